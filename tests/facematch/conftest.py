"""Face-matching tests. Real: the mediapipe and dlib models from the installed wheels (loaded
once per session) and the photographs of ../shared/faces. Made here: synthetic and derived
images (noise, truncated files, rotated, shifted, ID-card crops), built in memory."""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from services.facematch.calibration import LivenessPolicy
from services.facematch.engine import FaceEngine

REPO_ROOT = Path(__file__).resolve().parents[2]
#: the channel the tests use for single-photo captures (liveness not required)
STILL = "still"


def find_faces_dir(start: Path = REPO_ROOT) -> Path | None:
    """`shared/faces` in the repository root or in one of its ancestors (CI lays shared/
    beside the clone). FACEMATCH_FACES overrides."""
    override = os.environ.get("FACEMATCH_FACES")
    if override:
        return Path(override)
    for folder in (start, *start.parents):
        candidate = folder / "shared" / "faces"
        if (candidate / "obama").is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    found = find_faces_dir()
    if found is None:
        pytest.fail(f"test photos not found: no shared/faces beside {REPO_ROOT} or above it")
    return found


@pytest.fixture(scope="session")
def photo(faces_dir: Path) -> Callable[[str], bytes]:
    """photo("obama/obama_1.jpg") -> the file's bytes."""

    def read(name: str) -> bytes:
        return (faces_dir / name).read_bytes()

    return read


@pytest.fixture(scope="session")
def engine() -> Iterator[FaceEngine]:
    # app and terminal also accept bursts without a challenge here (the old clients' mode), so
    # the unchallenged checks stay tested; tests of LIVENESS_NO_CHALLENGE narrow the policy
    policy = LivenessPolicy(required={"app": True, "terminal": True, STILL: False},
                            unchallenged=frozenset({"app", "terminal"}))
    face_engine = FaceEngine(policy=policy)
    yield face_engine
    face_engine.close()


def rgb_of(data: bytes) -> NDArray[np.uint8]:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def encode(pixels: NDArray[np.uint8], fmt: str = "JPEG", **params: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **params)
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    return struct.pack(">I", len(body)) + kind + body + crc


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width x height RGB pixels, followed by a tiny IDAT: a
    decompression bomb as far as the header is concerned, built without allocating it."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def jpeg_segment(marker: int, body: bytes) -> bytes:
    return struct.pack(">HH", marker, len(body) + 2) + body


def jpeg_header_only(width: int, height: int) -> bytes:
    """A baseline JPEG whose SOF0 declares width x height YCbCr pixels (at most 65535 a side),
    with a start of scan and a few bytes of entropy-coded data: the JPEG twin of
    `png_header_only`."""
    components = b"".join(bytes([index, 0x11, 0]) for index in (1, 2, 3))
    sof0 = struct.pack(">BHHB", 8, height, width, 3) + components
    sos = bytes([3]) + b"".join(bytes([index, 0x00]) for index in (1, 2, 3)) + bytes([0, 63, 0])
    return (
        b"\xff\xd8" + jpeg_segment(0xFFC0, sof0) + jpeg_segment(0xFFDA, sos) + b"\x00" * 16 + b"\xff\xd9"
    )
