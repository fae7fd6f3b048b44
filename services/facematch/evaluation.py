"""Error rates of the matcher over labelled photo sets (one folder per person).

Pure parts: labelled images and pair lists, pairs by identity, FAR/FRR, DET points, the
operating point for a target false-accept rate (with the statistical upper bound the number of
impostor pairs allows), and burst trials (several photos of one person decided together).
`simulated_id_card` turns a photo into an ID-card-like image (102 x 126 px head-and-shoulders,
JPEG) to calibrate the ID-card path, for which no real ID photos are available to the project.

Identity is the person (folder, or the alias given for it) of each image, and an image is
named by its path relative to the set root ("obama/obama_1.jpg"), so two people whose folders
both hold "1.jpg" are two images of two people.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from services.facematch.detection import FaceBox
from services.facematch.geometry import face_crop
from services.facematch.matching import distances

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
ID_CARD_SIZE = (102, 126)  # width, height of the photo read from a second-generation ID card
PAIR_LIST = "pairs.csv"


class EvaluationInputError(Exception):
    """A photo set or pair list that cannot be used (missing, unreadable, inconsistent)."""


@dataclass(frozen=True)
class Sample:
    person: str
    name: str  # unique key of the image: "<set>/<folder>/<file>" or "<folder>/<file>"
    embedding: NDArray[np.float64] = field(repr=False)
    #: sort key of frame quality, smaller is better (the engine's best-frame order)
    rank: tuple[float, ...] = ()


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


@dataclass(frozen=True)
class OperatingPoint:
    """The largest threshold whose measured FAR is at most `target_far`, and what it costs."""

    target_far: float
    threshold: float
    far: float
    frr: float
    impostor_pairs: int
    genuine_pairs: int
    accepted_impostors: int
    rejected_genuine: int
    #: one-sided 95 % upper confidence bound of the FAR from this many impostor pairs
    far_upper95: float


@dataclass(frozen=True)
class LabelledImage:
    person: str
    name: str
    path: Path


# ----------------------------------------------------------------------------- photo sets


def labelled_images(
    root: Path, exclude: Iterable[str] = (), alias: dict[str, str] | None = None, prefix: str = ""
) -> list[LabelledImage]:
    """Every image in root/<folder>/; the person is the folder (or `alias[folder]`), prefixed
    with `prefix` so that people of different sets stay apart."""
    if not root.is_dir():
        raise EvaluationInputError(f"no such photo folder: {root}")
    alias = alias or {}
    skipped = set(exclude)
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in skipped):
        person = prefix + alias.get(folder.name, folder.name)
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                found.append(LabelledImage(person, f"{prefix}{folder.name}/{path.name}", path))
    return found


def read_pair_list(path: Path, prefix: str = "") -> dict[frozenset[str], bool]:
    """`a,b,same_person` rows (paths relative to the list's folder, same_person yes/no) as
    {frozenset({name_a, name_b}): same}."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise EvaluationInputError(f"cannot read pair list {path}: {error.strerror}") from None
    listed: dict[frozenset[str], bool] = {}
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), 2):
        try:
            a, b, same = row["a"].strip(), row["b"].strip(), row["same_person"].strip().lower()
        except (KeyError, AttributeError):
            raise EvaluationInputError(f"{path}:{line}: expected columns a,b,same_person") from None
        if same not in ("yes", "no") or a == b:
            raise EvaluationInputError(f"{path}:{line}: bad pair")
        listed[frozenset((prefix + a, prefix + b))] = same == "yes"
    return listed


def check_pair_list(listed: dict[frozenset[str], bool], images: Sequence[LabelledImage]) -> list[str]:
    """Problems of a pair list against the folders: unknown images, labels that contradict the
    folder identity. Empty when the list agrees."""
    person = {image.name: image.person for image in images}
    problems = []
    for names, same in listed.items():
        a, b = sorted(names)
        if a not in person or b not in person:
            problems.append(f"{a},{b}: image not in the set")
        elif (person[a] == person[b]) != same:
            label = "same" if same else "different"
            problems.append(f"{a},{b}: labelled {label} but the folders say otherwise")
    return problems


# ----------------------------------------------------------------------------- pairs


def _pair(a: Sample, b: Sample) -> Pair:
    return Pair(a.name, b.name, float(distances(a.embedding, [b.embedding])[0]), a.person == b.person)


def all_pairs(samples: Sequence[Sample], listed: dict[frozenset[str], bool] | None = None) -> list[Pair]:
    """Every pair of distinct images, genuine when they show the same person. With `listed`
    (a pair list), pairs of two images it knows are scored only if it lists them."""
    known = {name for names in listed for name in names} if listed else set()
    pairs = []
    for a, b in combinations(samples, 2):
        both_known = a.name in known and b.name in known
        if listed is not None and both_known and frozenset((a.name, b.name)) not in listed:
            continue
        pairs.append(_pair(a, b))
    return pairs


def cross_pairs(probes: Sequence[Sample], references: Sequence[Sample]) -> list[Pair]:
    """Every probe against every reference made from another image (ID card vs live)."""
    return [_pair(p, r) for p in probes for r in references if p.name != r.name]


# ----------------------------------------------------------------------------- rates


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


def far_upper_bound(accepted: int, trials: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a rate seen `accepted` times in `trials`
    (0 in n gives about 3/n, the rule of three)."""
    if trials <= 0:
        return 1.0
    if accepted >= trials:
        return 1.0
    alpha = 1.0 - confidence

    def cdf(p: float) -> float:  # P(X <= accepted) for X ~ Binomial(trials, p)
        total = 0.0
        for k in range(accepted + 1):
            log_term = (math.lgamma(trials + 1) - math.lgamma(k + 1) - math.lgamma(trials - k + 1)
                        + k * math.log(p) + (trials - k) * math.log1p(-p))
            total += math.exp(log_term)
        return total

    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2.0
        if mid <= 0.0 or cdf(mid) > alpha:
            low = mid
        else:
            high = mid
    return high


def operating_point(pairs: Sequence[Pair], target_far: float, resolution: float = 0.001) -> OperatingPoint:
    """The largest threshold (a multiple of `resolution`) at which the measured FAR is at most
    `target_far`: below the nearest impostor distance that would exceed the allowance."""
    impostor = sorted(p.distance for p in pairs if not p.genuine)
    genuine = [p.distance for p in pairs if p.genuine]
    allowed = math.floor(target_far * len(impostor) + 1e-9)
    if allowed < len(impostor):
        limit = impostor[allowed]  # accepting this one would exceed the target
        threshold = math.floor(limit / resolution - 1e-9) * resolution
        if threshold >= limit:
            threshold -= resolution
    else:
        threshold = max(impostor + genuine + [0.0])
    threshold = round(max(threshold, 0.0), 6)
    point = rates(pairs, threshold)
    accepted = sum(d <= threshold for d in impostor)
    return OperatingPoint(
        target_far=target_far, threshold=threshold, far=point.far, frr=point.frr,
        impostor_pairs=len(impostor), genuine_pairs=len(genuine), accepted_impostors=accepted,
        rejected_genuine=sum(d > threshold for d in genuine),
        far_upper95=far_upper_bound(accepted, len(impostor)),
    )


def det_points(pairs: Sequence[Pair]) -> list[RocPoint]:
    """(FAR, FRR) at every distinct distance of the pairs (the full DET curve)."""
    cuts = sorted({round(p.distance, 4) for p in pairs})
    return roc(pairs, cuts)


# ----------------------------------------------------------------------------- bursts

Decide = Callable[[Sequence[Sample], Sample], float]


def decide_best_frame(burst: Sequence[Sample], reference: Sample) -> float:
    """Distance of the best frame by quality (the engine's single-frame rule)."""
    best = min(burst, key=lambda s: s.rank)
    return float(distances(best.embedding, [reference.embedding])[0])


def decide_fused(burst: Sequence[Sample], reference: Sample) -> float:
    """Distance of the mean embedding of the burst."""
    mean = np.mean(np.stack([s.embedding for s in burst]), axis=0)
    return float(distances(mean, [reference.embedding])[0])


def decide_min(burst: Sequence[Sample], reference: Sample) -> float:
    """Smallest distance of any frame."""
    return float(distances(reference.embedding, [s.embedding for s in burst]).min())


def decide_median(burst: Sequence[Sample], reference: Sample) -> float:
    return float(np.median(distances(reference.embedding, [s.embedding for s in burst])))


BURST_RULES: dict[str, Decide] = {
    "best frame": decide_best_frame,
    "fused (mean)": decide_fused,
    "min distance": decide_min,
    "median distance": decide_median,
}


def burst_trials(
    samples: Sequence[Sample], size: int, decide: Decide, per_person: int = 60,
    references: Sequence[Sample] | None = None,
) -> list[Pair]:
    """Bursts of `size` different photos of one person, each against every reference photo not
    made from a photo of the burst (`references`: default the samples themselves; the ID cards
    for the enrolment path): genuine when the reference shows the same person. At most
    `per_person` bursts of a person (the first in a fixed order), so one person with many
    photos does not dominate."""
    by_person: dict[str, list[Sample]] = {}
    for sample in samples:
        by_person.setdefault(sample.person, []).append(sample)
    pairs = []
    for person, photos in sorted(by_person.items()):
        if len(photos) < size:
            continue
        for burst in list(combinations(photos, size))[:per_person]:
            names = {s.name for s in burst}
            label = "+".join(sorted(names))
            for reference in samples if references is None else references:
                if reference.name in names:
                    continue
                genuine = reference.person == person
                pairs.append(Pair(label, reference.name, decide(burst, reference), genuine))
    return pairs


# ----------------------------------------------------------------------------- ID card


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


def camera_frame(data: bytes, width: int, height: int, quality: int = 90) -> bytes:
    """A photo as a terminal camera would send it: fitted inside width x height (aspect kept) and
    encoded as JPEG at `quality` (the kiosk: 640 x 480, canvas JPEG 0.9); a photo that fits
    already is returned as it is."""
    with Image.open(io.BytesIO(data)) as image:
        upright = (ImageOps.exif_transpose(image) or image).convert("RGB")
        if upright.size[0] <= width and upright.size[1] <= height:
            return data
        upright.thumbnail((width, height))
        out = io.BytesIO()
        upright.save(out, "JPEG", quality=quality)
        return out.getvalue()
