"""AES-GCM sealing for data at rest (templates, enrolment photos). The key is given by the
caller (from configuration); 16, 24 or 32 bytes."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.facematch.reasons import Code, FaceError

_VERSION = b"\x01"
_NONCE_BYTES = 12  # 96-bit random nonce, as NIST SP 800-38D recommends


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """version (1 byte) | nonce (12 bytes) | ciphertext and 16-byte tag."""
    nonce = os.urandom(_NONCE_BYTES)
    return _VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """The plaintext, or FaceError(SEAL_INVALID) if the data, the key or the aad is wrong."""
    if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _VERSION:
        raise FaceError(Code.SEAL_INVALID, "sealed data is malformed")
    nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, body, aad)
    except InvalidTag:
        raise FaceError(Code.SEAL_INVALID, "sealed data failed authentication") from None
