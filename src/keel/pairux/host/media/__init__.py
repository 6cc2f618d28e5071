"""The host's media side: capture the screen, encode each frame once, fan the packets out.

``capture`` grabs frames (mss on an X display, or a synthetic pattern that carries its own frame
number), ``encoder`` turns them into VP8 packets with our own rate settings, ``fanout`` hands
every packet to one bounded queue per viewer whose aiortc track sends packets without encoding
again, ``ladder`` picks resolution, fps and bitrate from the viewers' receiver reports, ``rtc``
is the narrow typed seam to aiortc, and ``pipeline`` runs the loop that ties them together.
"""
