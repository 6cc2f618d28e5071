"""Mail: the file outbox (0600 files, logs without content) and SMTP against a real server
(aiosmtpd on loopback): plain, STARTTLS with login, implicit TLS, and failures."""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import logging
import socket
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keel.core.identity.mail import FileMailer, MailerError, Message, SmtpMailer

LINK = "https://learn.example.org/reset/confirm?token=secret-token-value"
MESSAGE = Message(to="ana@example.org", subject="Reset your password", text=f"Open {LINK}")
SENDER = "Keel <keel@example.org>"


async def test_the_file_mailer_writes_private_files_and_logs_no_content(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox" / "acme"
    mailer = FileMailer(outbox, sender=SENDER)
    # Every level: an earlier test may have configured logging at WARNING for a CLI run.
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs() as logs:
            await mailer.send(MESSAGE)
            await mailer.send(MESSAGE)
    finally:
        structlog.configure(**saved)
    files = sorted(outbox.iterdir())
    assert len(files) == 2
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        parsed = email.message_from_bytes(path.read_bytes())
        assert parsed["To"] == "ana@example.org"
        assert parsed["From"] == SENDER
        assert LINK in _text(parsed)
    assert [entry["event"] for entry in logs] == ["mail_written", "mail_written"]
    assert "secret-token-value" not in repr(logs)
    assert "secret-token-value" not in repr(MESSAGE)


async def test_the_file_mailer_reports_an_outbox_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(MailerError):
        await FileMailer(blocker / "outbox", sender=SENDER).send(MESSAGE)


def _text(parsed: email.message.Message) -> str:
    payload = parsed.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


# -- SMTP ------------------------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.endswith("@refused.example"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    """A self-signed certificate for 127.0.0.1: (cert file, key file, PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keel test smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("smtp-tls")
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return folder / "cert.pem", folder / "key.pem", pem


def _server_tls(certificate: tuple[Path, Path, bytes]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate[0], certificate[1])
    return context


def _client_tls(certificate: tuple[Path, Path, bytes]) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=certificate[2].decode())


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"keel",
        b"mail password",
    )
    return AuthResult(success=ok, handled=False)  # aiosmtpd then answers 535 itself


def _serve(inbox: Inbox, **kwargs: Any) -> Iterator[int]:
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def plain_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    for port in _serve(inbox):
        yield inbox, port


@pytest.fixture
def starttls_server(certificate: tuple[Path, Path, bytes]) -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    for port in _serve(
        inbox,
        tls_context=_server_tls(certificate),
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
    ):
        yield inbox, port


@pytest.fixture
def tls_server(certificate: tuple[Path, Path, bytes]) -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    for port in _serve(inbox, ssl_context=_server_tls(certificate)):
        yield inbox, port


async def test_smtp_delivers_a_message_to_a_plain_local_relay(
    plain_server: tuple[Inbox, int],
) -> None:
    inbox, port = plain_server
    await SmtpMailer("127.0.0.1", port, SENDER, security="none").send(MESSAGE)
    (envelope,) = inbox.envelopes
    assert envelope.rcpt_tos == ["ana@example.org"]
    assert envelope.mail_from == "keel@example.org"
    assert isinstance(envelope.content, bytes)
    parsed = email.message_from_bytes(envelope.content)
    assert parsed["Subject"] == "Reset your password"
    assert LINK in _text(parsed)


async def test_smtp_upgrades_with_starttls_and_logs_in(
    starttls_server: tuple[Inbox, int], certificate: tuple[Path, Path, bytes]
) -> None:
    inbox, port = starttls_server
    mailer = SmtpMailer(
        "127.0.0.1",
        port,
        SENDER,
        security="starttls",
        username="keel",
        password="mail password",
        tls_context=_client_tls(certificate),
    )
    await mailer.send(MESSAGE)
    assert len(inbox.envelopes) == 1
    assert "mail password" not in repr(mailer)


async def test_smtp_with_a_wrong_password_fails_as_a_mailer_error(
    starttls_server: tuple[Inbox, int], certificate: tuple[Path, Path, bytes]
) -> None:
    _inbox, port = starttls_server
    mailer = SmtpMailer(
        "127.0.0.1",
        port,
        SENDER,
        username="keel",
        password="wrong",
        tls_context=_client_tls(certificate),
    )
    with pytest.raises(MailerError) as failed:
        await mailer.send(MESSAGE)
    assert "wrong" not in failed.value.detail


async def test_starttls_refuses_a_certificate_it_does_not_trust(
    starttls_server: tuple[Inbox, int],
) -> None:
    _inbox, port = starttls_server
    with pytest.raises(MailerError):
        await SmtpMailer("127.0.0.1", port, SENDER, username="keel", password="x").send(MESSAGE)


async def test_smtp_speaks_tls_from_the_start(
    tls_server: tuple[Inbox, int], certificate: tuple[Path, Path, bytes]
) -> None:
    inbox, port = tls_server
    await SmtpMailer(
        "127.0.0.1", port, SENDER, security="tls", tls_context=_client_tls(certificate)
    ).send(MESSAGE)
    assert len(inbox.envelopes) == 1


async def test_a_refused_recipient_is_a_mailer_error_without_the_message(
    plain_server: tuple[Inbox, int],
) -> None:
    _inbox, port = plain_server
    refused = Message(to="ana@refused.example", subject="s", text=f"Open {LINK}")
    with pytest.raises(MailerError) as failed:
        await SmtpMailer("127.0.0.1", port, SENDER, security="none").send(refused)
    assert "secret-token-value" not in failed.value.detail


async def test_an_unreachable_server_is_a_mailer_error() -> None:
    mailer = SmtpMailer("127.0.0.1", _free_port(), SENDER, timeout_seconds=2)
    with pytest.raises(MailerError):
        await mailer.send(MESSAGE)
