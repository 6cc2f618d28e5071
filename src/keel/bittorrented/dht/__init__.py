"""The DHT side of bittorrented: libtorrent sessions, metadata fetches and the crawler.

``session`` builds libtorrent sessions from typed settings (public, or loopback for tests) and
owns each session's one ``alerts`` pump; ``fetcher`` fetches info dicts by hash or magnet;
``crawler`` runs the BEP 51 pipeline (``nodes`` schedules sample queries, ``peers`` runs
get_peers) into a batched sink; ``bloom`` remembers seen and banned hashes across runs;
``metrics`` has the Prometheus series and the stall alarm.
"""
