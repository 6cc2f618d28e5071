"""Swarm sizes (seeders, leechers) from tracker scrapes (UDP, HTTP) and BEP 33 DHT scrapes.

``refresh.SwarmRefresher`` is what a worker runs: each round it scrapes the torrents whose
counts are oldest and writes them onto the search rows.
"""
