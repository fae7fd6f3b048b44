"""AES-GCM sealing for data at rest (templates, enrolment photos). The key is given by the
caller (from configuration); 16, 24 or 32 bytes. The format and the code are the shared
:mod:`backbone.sealing` (version byte, 12-byte nonce, ciphertext and tag); here a failure is a
:class:`FaceError` ``SEAL_INVALID``."""

from __future__ import annotations

from backbone import sealing
from services.facematch.reasons import Code, FaceError


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """version (1 byte) | nonce (12 bytes) | ciphertext and 16-byte tag."""
    return sealing.seal(key, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """The plaintext, or FaceError(SEAL_INVALID) if the data, the key or the aad is wrong."""
    try:
        return sealing.open_sealed(key, sealed, aad)
    except sealing.SealError as exc:
        raise FaceError(Code.SEAL_INVALID, str(exc)) from None
