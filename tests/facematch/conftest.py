"""Face-matching tests. Real: the mediapipe and dlib models from the installed wheels (loaded
once per session) and the photographs of ../shared/faces. Made here: synthetic and derived
images (noise, truncated files, rotated, shifted, ID-card crops), built in memory."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) without an installed package
    sys.path.insert(0, str(REPO_ROOT))

from services.facematch.api import FaceEngine  # noqa: E402
from services.facematch.config import LivenessPolicy  # noqa: E402

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
    policy = LivenessPolicy(required={"app": True, "terminal": True, STILL: False})
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
