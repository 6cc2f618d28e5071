"""Exact full-text search over torrent names: one request shape, an engine per database."""
