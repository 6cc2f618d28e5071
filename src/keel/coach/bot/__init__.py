"""The Telegram side of coach: the service the handlers call, the handlers, the runner."""
