"""coach: a Telegram trading-psychology bot with honest risk scans and checked payments."""
