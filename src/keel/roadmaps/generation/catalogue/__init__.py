"""The curated catalogue: one JSON file per topic, loaded by ``generation.topics``.

Each file is ``<slug>.json`` and is written by hand: ordered steps with an honest estimate of
hours, a description of our own and one to three resources at stable, real addresses
(official documentation and well-known free material). ``tests/roadmaps/generation/
test_catalogue.py`` checks every file.
"""
