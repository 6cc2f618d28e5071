"""pairux: peer-to-peer screen sharing with simultaneous remote control.

The server (rooms, join codes, WebSocket signaling, TURN credentials) runs under ``keel serve``
at ``/pairux``; the host agent (``keel pairux host``) shares a screen, encodes it once for every
viewer and injects the input of the controllers its user granted.
"""
