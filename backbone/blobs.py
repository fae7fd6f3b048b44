"""Encrypted blob storage for photos (capture frames, ID-card photos, evidence photos).

Content-addressed: a blob's reference is ``blob:<sha256 of the plaintext>``; events carry the
reference, never the bytes. Files are sealed with AES-256-GCM (random 96-bit nonce, the
reference as associated data) under the key from configuration.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class BlobNotFound(KeyError):
    pass


class BlobStore:
    def __init__(self, root: Path, key: bytes) -> None:
        self.root = Path(root)
        self._aead = AESGCM(key)

    def _path(self, ref: str) -> Path:
        if not ref.startswith("blob:") or len(ref) != 69:
            raise BlobNotFound("malformed blob reference")
        digest = ref[5:]
        return self.root / digest[:2] / digest

    def put(self, data: bytes) -> str:
        ref = "blob:" + hashlib.sha256(data).hexdigest()
        path = self._path(ref)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            nonce = os.urandom(12)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(nonce + self._aead.encrypt(nonce, data, ref.encode()))
            os.replace(tmp, path)
        return ref

    def get(self, ref: str) -> bytes:
        path = self._path(ref)
        if not path.exists():
            raise BlobNotFound("no such blob")
        sealed = path.read_bytes()
        return self._aead.decrypt(sealed[:12], sealed[12:], ref.encode())
