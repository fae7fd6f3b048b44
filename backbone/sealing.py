"""AES-GCM sealing of data at rest, for any service (facematch's templates, hardship's income,
illness, disability and certificate details). The key comes from configuration; each use
derives its own key (:func:`purpose_key`) so one purpose's ciphertext never opens under another.

Format: version (1 byte) | nonce (12 bytes) | ciphertext and 16-byte tag. The associated data
(``aad``) binds a sealed value to where it belongs (an event type and a case id, say): moved
elsewhere, it no longer opens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = b"\x01"
NONCE_BYTES = 12  # 96-bit random nonce, as NIST SP 800-38D recommends


class SealError(ValueError):
    """Sealed data is malformed, or the key or the associated data is wrong."""


def purpose_key(secret: bytes, purpose: str) -> bytes:
    """A 256-bit key for one purpose, derived from the configured secret (HMAC-SHA256)."""
    return hmac.new(secret, b"aid-seal:" + purpose.encode(), hashlib.sha256).digest()


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[:1] != VERSION:
        raise SealError("sealed data is malformed")
    nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, body, aad)
    except InvalidTag:
        raise SealError("sealed data failed authentication") from None


class JsonSealer:
    """Seals JSON values as base64 text (what an event payload can carry)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def seal(self, value: Any, aad: str) -> str:
        data = json.dumps(value, ensure_ascii=False, sort_keys=True).encode()
        return base64.b64encode(seal(self._key, data, aad.encode())).decode()

    def open(self, text: str, aad: str) -> Any:
        try:
            raw = base64.b64decode(text, validate=True)
        except ValueError:
            raise SealError("sealed text is not base64") from None
        return json.loads(open_sealed(self._key, raw, aad.encode()))
