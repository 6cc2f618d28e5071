"""Talking to Telegram within its limits (ADR 0038).

``splitting`` cuts a text into messages of at most 4096 UTF-16 units; ``pacing`` holds each
chat and the bot to Telegram's rates and obeys (and records) its flood waits; ``streaming``
writes a model's answer into a chat as it arrives and makes sure the final text lands.
"""
