"""bittorrented: a torrent metadata index (DHT crawling, ingestion, exact search, Torznab)."""
