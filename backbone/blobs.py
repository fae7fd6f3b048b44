"""Encrypted blob storage for photos (capture frames, ID-card photos, evidence photos, letters).

Content-addressed under a key: a blob's reference is ``blob:<HMAC-SHA256 of the plaintext>``,
keyed with a key derived from the secret key, so a reference says nothing about a photo to
whoever does not hold the key (a plain hash would confirm a guessed photo). Events carry the
reference, never the bytes. Files are sealed with AES-256-GCM (random 96-bit nonce, the
reference as associated data) under the secret key, and are readable by the service's user
only: files 0600, directories 0700.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import hmac
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NAME_KEY_LABEL = b"aid/blob-names/v1"


class BlobNotFound(KeyError):
    pass


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int | None]:
    """The file at ``path``, opened and under an exclusive lock (flock) for the ``with`` block;
    None if there is none, or if it was removed or replaced by a new put while we waited."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield None
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        yield fd if current else None
    finally:
        os.close(fd)


class BlobStore:
    """Sealed, content-addressed blobs in ``root``.

    ``put(data)`` stores (or finds) a blob and returns its reference; ``get(ref)`` reads it back.

    Undoing the blobs of a rejected request: a request handler that stores photos and may then
    refuse the request (a domain rule, a concurrent change, a failed append) stores them inside
    :meth:`staged`::

        with self.blobs.staged() as blobs:      # blobs has put() and get(), like the store
            refs = read_images(body, "frames", blobs)
            ...decide, append the event...      # an exception escaping here removes the
                                                # blobs this request created, then propagates

    A blob that existed before (the same photo sent earlier) is never removed, nor one that
    another request also stored while this one was running (each ``put`` of an existing blob
    claims it, under a file lock, and a rollback only removes a blob nobody claimed since it was
    created). :meth:`put_new` (the reference and whether this call created the file) and
    :meth:`delete` are the building blocks, for handlers that cannot use a ``with`` block.
    """

    def __init__(self, root: Path, key: bytes) -> None:
        self.root = Path(root)
        self._aead = AESGCM(key)
        self._name_key = hmac.new(key, _NAME_KEY_LABEL, hashlib.sha256).digest()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(PermissionError):  # not ours: leave it to its owner
            os.chmod(self.root, 0o700)

    def reference(self, data: bytes) -> str:
        """The reference ``data`` is (or would be) stored under."""
        return "blob:" + hmac.new(self._name_key, data, hashlib.sha256).hexdigest()

    def _path(self, ref: str) -> Path:
        digest = ref[5:]
        if not ref.startswith("blob:") or len(digest) != 64 or digest.strip("0123456789abcdef"):
            raise BlobNotFound("malformed blob reference")
        return self.root / digest[:2] / digest

    def put(self, data: bytes) -> str:
        return self.put_new(data)[0]

    def put_new(self, data: bytes) -> tuple[str, int | None]:
        """Store ``data``; return its reference, and the file's modification time (ns) if this
        call created the file (None if it was there already: then this call claims it)."""
        ref = self.reference(data)
        path = self._path(ref)
        if self._claim(path):
            return ref, None
        path.parent.mkdir(mode=0o700, exist_ok=True)
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, data, ref.encode())
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(sealed)
                f.flush()
                os.fsync(f.fileno())
                created = os.fstat(f.fileno()).st_mtime_ns
            os.replace(tmp, path)  # a concurrent put of the same bytes wrote the same plaintext
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return ref, created

    def get(self, ref: str) -> bytes:
        path = self._path(ref)
        try:
            sealed = path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFound("no such blob") from None
        return self._aead.decrypt(sealed[:12], sealed[12:], ref.encode())

    def delete(self, ref: str, created_mtime_ns: int | None = None) -> bool:
        """Remove a blob; True if removed. With ``created_mtime_ns`` (from :meth:`put_new`),
        only if no ``put`` claimed it since: another request may hold a reference to it."""
        path = self._path(ref)
        with _locked(path) as fd:
            if fd is None or (created_mtime_ns is not None and os.fstat(fd).st_mtime_ns != created_mtime_ns):
                return False
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
            return True

    def _claim(self, path: Path) -> bool:
        """If ``path`` exists, move its modification time on (under the file lock), so a
        rollback of the request that created it leaves it alone. False if it does not exist."""
        with _locked(path) as fd:
            if fd is None:
                return False  # never there, or deleted (rolled back) while we waited: store it again
            before = os.fstat(fd).st_mtime_ns
            stamp = max(time.time_ns(), before + 1)
            try:
                os.utime(fd, ns=(stamp, stamp))
            except OSError as exc:  # read-only store: nothing can be rolled back either
                if exc.errno not in (errno.EROFS, errno.EPERM, errno.EACCES):
                    raise
            return True

    @contextlib.contextmanager
    def staged(self) -> Iterator[StagedBlobs]:
        """Blobs stored through the yielded object are removed again if an exception escapes
        the ``with`` block (the request was rejected); see the class docstring."""
        stage = StagedBlobs(self)
        try:
            yield stage
        except BaseException:
            stage.rollback()
            raise


class StagedBlobs:
    """The view of a :class:`BlobStore` inside :meth:`BlobStore.staged`: same ``put``/``get``,
    remembers what it created."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.created: list[tuple[str, int]] = []

    def put(self, data: bytes) -> str:
        ref, created = self.store.put_new(data)
        if created is not None:
            self.created.append((ref, created))
        return ref

    def get(self, ref: str) -> bytes:
        return self.store.get(ref)

    def rollback(self) -> None:
        for ref, mtime_ns in reversed(self.created):
            with contextlib.suppress(OSError):
                self.store.delete(ref, mtime_ns)
        self.created.clear()
