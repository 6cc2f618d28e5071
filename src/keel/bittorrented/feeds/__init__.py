"""Features served from the index as feeds: saved searches and the Torznab protocol."""
