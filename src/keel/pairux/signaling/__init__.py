"""WebSocket signaling: the message schema (``messages``) and the in-memory hub that routes
them within one room (``hub``)."""
