"""Error rates of the matcher over a labelled photo set (folder per person).

Pure parts: pairs, FAR/FRR, ROC, equal error rate. `simulated_id_card` turns a photo into an
ID-card-like image (102 x 126 px head-and-shoulders, JPEG) to calibrate the ID-card path, for
which no real ID photos are available to the project.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from services.facematch.detection import FaceBox
from services.facematch.geometry import face_crop
from services.facematch.matching import distances

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
ID_CARD_SIZE = (102, 126)  # width, height of the photo read from a second-generation ID card


@dataclass(frozen=True)
class Sample:
    person: str
    name: str
    embedding: NDArray[np.float64]


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    distance: float
    genuine: bool


@dataclass(frozen=True)
class RocPoint:
    threshold: float
    far: float
    frr: float


def labelled_images(
    root: Path, exclude: Iterable[str] = (), alias: dict[str, str] | None = None
) -> list[tuple[str, Path]]:
    """(person, path) for every image in root/<person>/; `alias` maps a folder to a person."""
    alias = alias or {}
    skipped = set(exclude)
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in skipped):
        person = alias.get(folder.name, folder.name)
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                found.append((person, path))
    return found


def all_pairs(samples: Sequence[Sample]) -> list[Pair]:
    return [
        Pair(a.name, b.name, float(distances(a.embedding, [b.embedding])[0]), a.person == b.person)
        for a, b in combinations(samples, 2)
    ]


def cross_pairs(probes: Sequence[Sample], references: Sequence[Sample]) -> list[Pair]:
    """Every probe against every reference made from another image (ID card vs live)."""
    return [
        Pair(p.name, r.name, float(distances(p.embedding, [r.embedding])[0]), p.person == r.person)
        for p in probes
        for r in references
        if p.name != r.name
    ]


def rates(pairs: Sequence[Pair], threshold: float) -> RocPoint:
    """FAR: impostor pairs accepted / impostor pairs; FRR: genuine pairs rejected / genuine."""
    genuine = [p.distance for p in pairs if p.genuine]
    impostor = [p.distance for p in pairs if not p.genuine]
    far = sum(d <= threshold for d in impostor) / len(impostor) if impostor else 0.0
    frr = sum(d > threshold for d in genuine) / len(genuine) if genuine else 0.0
    return RocPoint(threshold, far, frr)


def roc(pairs: Sequence[Pair], thresholds: Iterable[float]) -> list[RocPoint]:
    return [rates(pairs, t) for t in thresholds]


def default_thresholds(start: float = 0.30, stop: float = 0.80, step: float = 0.02) -> list[float]:
    count = round((stop - start) / step) + 1
    return [round(start + i * step, 4) for i in range(count)]


def separation(pairs: Sequence[Pair]) -> tuple[float | None, float | None]:
    """(largest genuine distance, smallest impostor distance)."""
    genuine = [p.distance for p in pairs if p.genuine]
    impostor = [p.distance for p in pairs if not p.genuine]
    return (max(genuine) if genuine else None, min(impostor) if impostor else None)


def simulated_id_card(image: NDArray[np.uint8], face: FaceBox, quality: int = 75) -> bytes:
    """A head-and-shoulders crop with ID-card composition (face about 55 % of the width),
    scaled to 102 x 126 px and saved as JPEG."""
    width, height = ID_CARD_SIZE
    side = max(face.width, face.height) / 0.55  # crop width in source pixels
    cx, cy = face.center
    crop_h = side * height / width
    top = face.y - 0.35 * face.height
    square = face_crop(image, (cx, top + crop_h / 2.0), crop_h, height)  # crop_h x crop_h -> 126 x 126
    margin = (height - width) // 2
    card = square[:, margin : margin + width]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(card)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
