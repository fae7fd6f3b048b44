"""The encrypted blob store: keyed names, private files, and undoing a rejected request's blobs."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backbone.blobs import BlobNotFound, BlobStore

KEY = bytes(range(32))
PHOTO = b"\xff\xd8\xff\xe0 a photo " * 50


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip_and_the_reference_is_a_keyed_hash(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", KEY)
    ref = store.put(PHOTO)
    assert ref.startswith("blob:") and len(ref) == 69
    assert ref != "blob:" + hashlib.sha256(PHOTO).hexdigest()  # a guessed photo cannot be confirmed
    assert store.get(ref) == PHOTO
    assert store.put(PHOTO) == ref  # content-addressed: the same photo, the same blob
    other = BlobStore(tmp_path / "other", bytes(32 - i for i in range(32)))
    assert other.put(PHOTO) != ref  # the name depends on the key
    assert PHOTO not in (tmp_path / "blobs" / ref[5:7] / ref[5:]).read_bytes()  # sealed


def test_files_and_directories_are_private_to_the_service_user(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    store = BlobStore(root, KEY)
    ref = store.put(PHOTO)
    path = root / ref[5:7] / ref[5:]
    assert mode(root) == 0o700
    assert mode(path.parent) == 0o700
    assert mode(path) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left


def test_blobs_stored_under_the_old_plain_sha256_names_stay_readable(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, KEY)
    legacy = "blob:" + hashlib.sha256(PHOTO).hexdigest()
    nonce = os.urandom(12)
    (tmp_path / legacy[5:7]).mkdir()
    sealed = nonce + AESGCM(KEY).encrypt(nonce, PHOTO, legacy.encode())
    (tmp_path / legacy[5:7] / legacy[5:]).write_bytes(sealed)
    assert store.get(legacy) == PHOTO


def test_malformed_missing_and_tampered_blobs(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, KEY)
    for bad in ("blob:../../../../etc/passwd", "blob:" + "g" * 64, "sha:" + "0" * 64, "blob:" + "0" * 63):
        with pytest.raises(BlobNotFound):
            store.get(bad)
    with pytest.raises(BlobNotFound):
        store.get("blob:" + "0" * 64)
    ref = store.put(PHOTO)
    path = tmp_path / ref[5:7] / ref[5:]
    sealed = bytearray(path.read_bytes())
    sealed[20] ^= 1
    path.write_bytes(bytes(sealed))
    with pytest.raises(InvalidTag):
        store.get(ref)


def test_put_new_says_whether_it_created_the_file_and_delete_removes_it(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, KEY)
    ref, created = store.put_new(PHOTO)
    assert created is not None
    assert store.put_new(PHOTO) == (ref, None)  # there already: claimed, not created
    assert store.delete(ref) is True
    assert store.delete(ref) is False
    with pytest.raises(BlobNotFound):
        store.get(ref)


def test_a_rejected_request_removes_the_blobs_it_created_and_only_those(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, KEY)
    earlier = store.put(b"sent in an earlier, accepted request")
    with pytest.raises(RuntimeError, match="rejected"), store.staged() as blobs:
        new = blobs.put(b"a new photo")
        again = blobs.put(b"sent in an earlier, accepted request")
        assert again == earlier and blobs.get(new) == b"a new photo"
        raise RuntimeError("rejected by a domain rule")
    with pytest.raises(BlobNotFound):
        store.get(new)
    assert store.get(earlier) == b"sent in an earlier, accepted request"


def test_an_accepted_request_keeps_its_blobs(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, KEY)
    with store.staged() as blobs:
        ref = blobs.put(PHOTO)
    assert store.get(ref) == PHOTO


def test_a_rollback_never_removes_a_blob_another_request_stored_meanwhile(tmp_path: Path) -> None:
    """Two requests send the same photo at once; the first to store it is then rejected: the
    other one's event refers to that blob, so it must stay."""
    store = BlobStore(tmp_path, KEY)
    with pytest.raises(RuntimeError), store.staged() as first:
        ref = first.put(PHOTO)
        with store.staged() as second:  # accepted while the first is still running
            assert second.put(PHOTO) == ref
        raise RuntimeError("the first request is rejected")
    assert store.get(ref) == PHOTO
