"""Keel: self-hostable products on one hardened core."""

__version__ = "0.1.0"
