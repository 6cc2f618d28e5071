"""Envelope encryption of secrets at rest, keyed hashes, and the key-encryption key's file.

A key-encryption key (KEK, 32 bytes) wraps a fresh data key per secret (AES-256-GCM twice), and
the record's identity is bound in as associated data, so a ciphertext copied onto another row
fails to decrypt. The KEK itself never sits beside the data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keel.core.errors import KeelError

_VERSION = b"\x01"
_NONCE = 12
_WRAPPED_DEK = 32 + 16


class DecryptionFailed(KeelError):
    """A stored secret could not be decrypted: wrong key or tampered data."""

    code = "decryption_failed"


class InvalidKey(KeelError):
    """The key-encryption key must be base64 of exactly 32 bytes."""

    code = "invalid_key"
    status = 400


def parse_key(encoded: str) -> bytes:
    """Decode a base64 KEK; raises InvalidKey unless it is exactly 32 bytes."""
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidKey() from exc
    if len(raw) != 32:
        raise InvalidKey()
    return raw


def new_key() -> str:
    """A fresh base64-encoded 32-byte key."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


class SecretBox:
    """Encrypts and decrypts small secrets under one KEK."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != 32:
            raise InvalidKey()
        self._kek = AESGCM(kek)
        self._kek_id = hashlib.sha256(b"keel-kek-id" + kek).digest()[:4]
        self._hash_key = derive_subkey(kek, b"keel:keyed-hash")

    def __repr__(self) -> str:
        return f"SecretBox(kek_id={self._kek_id.hex()})"

    @property
    def kek_id(self) -> str:
        return self._kek_id.hex()

    def encrypt(self, plaintext: bytes, *, context: str) -> bytes:
        """Encrypt ``plaintext`` bound to ``context`` (e.g. ``"webhook:<id>"``)."""
        aad = _VERSION + self._kek_id + context.encode()
        dek = AESGCM.generate_key(bit_length=256)
        dek_nonce, nonce = os.urandom(_NONCE), os.urandom(_NONCE)
        wrapped = self._kek.encrypt(dek_nonce, dek, aad)
        body = AESGCM(dek).encrypt(nonce, plaintext, aad)
        return _VERSION + self._kek_id + dek_nonce + wrapped + nonce + body

    def decrypt(self, blob: bytes, *, context: str) -> bytes:
        """Decrypt what :meth:`encrypt` made for the same context; raises DecryptionFailed."""
        head = 1 + 4
        if len(blob) < head + _NONCE + _WRAPPED_DEK + _NONCE + 16 or blob[:1] != _VERSION:
            raise DecryptionFailed()
        if blob[1:head] != self._kek_id:
            raise DecryptionFailed("The secret was encrypted under a different master key.")
        aad = blob[:head] + context.encode()
        pos = head
        dek_nonce = blob[pos : pos + _NONCE]
        pos += _NONCE
        wrapped = blob[pos : pos + _WRAPPED_DEK]
        pos += _WRAPPED_DEK
        nonce = blob[pos : pos + _NONCE]
        pos += _NONCE
        try:
            dek = self._kek.decrypt(dek_nonce, wrapped, aad)
            return AESGCM(dek).decrypt(nonce, blob[pos:], aad)
        except InvalidTag as exc:
            raise DecryptionFailed() from exc

    def keyed_hash(self, value: str) -> str:
        """HMAC-SHA256 of ``value`` under a subkey of the KEK (for looking up API keys)."""
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()


def derive_subkey(kek: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(kek)


def load_or_create_key_file(path: Path) -> tuple[str, bool]:
    """Read a base64 KEK from ``path``, creating it (mode 0600) when missing.

    Returns the key and whether it was created now.
    """
    if path.exists():
        encoded = path.read_text().strip()
        parse_key(encoded)
        return encoded, False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    encoded = new_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(encoded + "\n")
    return encoded, True


_KEY_FILE_ATTEMPTS = 20


def shared_key_file(path: Path) -> str:
    """The base64 key in ``path``, created on first use (mode 0600) and then shared by every
    process using that file. A process that loses the race to create it reads it again shortly:
    the file may exist before its writer has finished."""
    for attempt in range(_KEY_FILE_ATTEMPTS):
        try:
            encoded, _created = load_or_create_key_file(path)
            parse_key(encoded)
            return encoded
        except (FileExistsError, InvalidKey):
            if attempt == _KEY_FILE_ATTEMPTS - 1:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")
