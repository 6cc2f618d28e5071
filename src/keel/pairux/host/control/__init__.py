"""Remote control on the host: the ``control`` data channel's messages (``messages``), who may
control (``grants``, decided here on the host and nowhere else), whose input goes through and
where (``arbitration``), how it reaches the display (``injector``, ``keymap``, ``hostinput``),
what happened (``audit``), one viewer's channel end to end (``channel``), and one session
assembled (``runtime``)."""
