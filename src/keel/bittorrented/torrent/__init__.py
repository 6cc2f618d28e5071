"""Torrents as data: bencode, magnet links, metainfo, and the values every part trades in."""
