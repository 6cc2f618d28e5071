"""roadmaps' pages: server-rendered HTML, with small scripts that carry the page's nonce."""
