"""Sending mail (password-reset links): a :class:`Mailer` protocol and its two implementations.

* :class:`FileMailer`, the embedded default: each message is a file (mode 0600) in an outbox
  directory, for the operator to read or a local MTA to pick up. It logs that it wrote one,
  never what (a reset link is a credential).
* :class:`SmtpMailer`: stdlib ``smtplib`` in a thread, with a timeout, plain, STARTTLS or
  implicit TLS, and login when a username is set.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Literal, Protocol

from keel.core.errors import Unavailable
from keel.core.logging import get_logger

log = get_logger("keel.identity.mail")

SmtpSecurity = Literal["starttls", "tls", "none"]


@dataclass(frozen=True)
class Message:
    """One plain-text message to one recipient."""

    to: str
    subject: str
    text: str

    def __repr__(self) -> str:  # the text may carry a link that is a credential
        return f"Message(subject={self.subject!r})"


class MailerError(Unavailable):
    """The message could not be handed to the mail system."""

    code = "mail_unavailable"


class Mailer(Protocol):
    async def send(self, message: Message) -> None:
        """Hand ``message`` to the mail system; MailerError (keeping the cause) when it could
        not be. Returning means accepted for delivery, not delivered."""
        ...


def _email(message: Message, sender: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.to
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or None)
    mail.set_content(message.text)
    return mail


class FileMailer:
    """Writes each message as an ``.eml`` file (0600) into ``outbox`` (created 0700)."""

    def __init__(self, outbox: Path, *, sender: str) -> None:
        self.outbox = outbox
        self.sender = sender

    async def send(self, message: Message) -> None:
        try:
            path = await asyncio.to_thread(self._write, _email(message, self.sender))
        except OSError as exc:
            raise MailerError(f"Could not write to the outbox: {exc.strerror}") from exc
        log.info("mail_written", file=path.name)

    def _write(self, mail: EmailMessage) -> Path:
        self.outbox.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Time first, so a listing is in order of sending; the random tail keeps names apart.
        name = f"{time.time_ns()}-{secrets.token_hex(4)}.eml"
        path = self.outbox / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(mail.as_bytes())
        return path


@dataclass(frozen=True)
class SmtpMailer:
    """Sends through an SMTP server. ``security``: ``starttls`` (upgrade a plain connection,
    port 587), ``tls`` (TLS from the start, port 465) or ``none`` (a local relay only)."""

    host: str
    port: int
    sender: str
    security: SmtpSecurity = "starttls"
    username: str = ""
    password: str = ""
    timeout_seconds: float = 10.0
    tls_context: ssl.SSLContext | None = None  # default: the system's CAs, hostname checked

    def __repr__(self) -> str:
        return f"SmtpMailer({self.host}:{self.port}, security={self.security})"

    async def send(self, message: Message) -> None:
        mail = _email(message, self.sender)
        try:
            await asyncio.to_thread(self._send, mail)
        except (smtplib.SMTPException, OSError) as exc:
            # The reply or errno only: the message (and its link) stays out of logs and errors.
            raise MailerError(f"SMTP {self.host}:{self.port} refused or failed: {exc}") from exc
        log.info("mail_sent", host=self.host)

    def _send(self, mail: EmailMessage) -> None:
        context = self.tls_context or ssl.create_default_context()
        client: smtplib.SMTP
        if self.security == "tls":
            client = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout_seconds, context=context
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds)
        with client:
            if self.security == "starttls":
                client.starttls(context=context)
            if self.username:
                client.login(self.username, self.password)
            client.send_message(mail)
