"""The viewer: a browser page served by the pairux app (no install, no CDN)."""
