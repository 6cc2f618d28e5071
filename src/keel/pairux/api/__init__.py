"""pairux's HTTP API (rooms) and the signaling WebSocket."""
