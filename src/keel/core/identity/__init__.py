"""Accounts for every product: email and password (argon2id), sessions in secure http-only
cookies, CSRF protection, login rate limits, password reset by signed one-use token.

    tables.py   the users and sessions tables, on a product's own metadata
"""

from keel.core.identity.tables import IdentityTables, identity_tables

__all__ = ["IdentityTables", "identity_tables"]
