"""Filling the index: bitmagnet's JSON-lines dumps and database, and the DHT crawl."""
