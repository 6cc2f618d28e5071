"""The index's tables: what a torrent becomes in each, the one write path (bulk), the
crawler's memory of what it saw, and the outside view of a torrent."""
