"""Swarm sizes (seeders, leechers) from tracker scrapes (UDP, HTTP) and BEP 33 DHT scrapes.

``base``          SwarmCounts and the Scraper Protocol every source implements
``udp_tracker``   BEP 15 scrape          ``http_tracker``  BEP 48 scrape
``dht_scrape``    BEP 33 scrape (Bloom filters of peers from the nodes near a hash)
``trackers``      the trackers remembered per torrent, and a pool of scrapers for them
``refresh``       the scheduled rounds a worker runs: ``SwarmRefresher.from_settings(...)``,
                  then ``run_forever(stop, settings.swarm_interval_seconds)``
"""
