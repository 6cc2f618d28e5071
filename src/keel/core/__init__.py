"""Shared kernel of Keel. Imports no product."""
