"""Reading release names: their parts (title, year, episode, resolution) and content type."""
