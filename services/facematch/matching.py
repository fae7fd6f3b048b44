"""1:1 and 1:N decisions over embeddings: pure functions, no models.

`distances` is the one face distance of facematch: the engine (1:1, burst identity), the 1:N
searches, the error-rate evaluation and the benchmark all call it. It takes a probe and many
references so that a school's or a province's templates are searched in one numpy operation
(one call per template was about twice as slow over 2000 templates); a 1:1 comparison is one
reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from services.facematch.templates import Template

Vector = NDArray[np.float64]


@dataclass(frozen=True)
class Match:
    student_id: str
    distance: float


def distances(probe: Vector, references: Sequence[Vector]) -> NDArray[np.float64]:
    """Euclidean distance from `probe` to each of `references`, in their order."""
    if not len(references):
        return np.zeros(0, dtype=np.float64)
    matrix = np.stack([np.asarray(r, dtype=np.float64) for r in references])
    result: NDArray[np.float64] = np.linalg.norm(matrix - np.asarray(probe, dtype=np.float64), axis=1)
    return result


def is_match(dist: float, threshold: float) -> bool:
    return dist <= threshold


def rank(
    probe: Vector, templates: Iterable[Template], model_version: str, within: float = float("inf")
) -> list[Match]:
    """Templates of `model_version` within distance `within` of `probe`, closest first (one row
    per student: their closest template)."""
    usable = [t for t in templates if t.model_version == model_version]
    dists = distances(probe, [t.vector for t in usable])
    best: dict[str, float] = {}
    for index in np.flatnonzero(dists <= within):
        student, dist = usable[index].student_id, float(dists[index])
        if dist < best.get(student, float("inf")):
            best[student] = dist
    return sorted((Match(sid, d) for sid, d in best.items()), key=lambda m: (m.distance, m.student_id))


def proxy_suspect(
    probe: Vector, claimed: Template, school_templates: Sequence[Template], threshold: float
) -> Match | None:
    """Another student whose template matches the capture at least as closely as the claimed
    student's does: the capture is probably that other student checking in for the claimed one."""
    claimed_distance = float(distances(probe, [claimed.vector])[0])
    others = [t for t in school_templates if t.student_id != claimed.student_id]
    candidates = rank(probe, others, claimed.model_version, within=min(threshold, claimed_distance))
    return candidates[0] if candidates else None


def duplicates(
    probe: Vector,
    templates: Sequence[Template],
    threshold: float,
    model_version: str,
    student_id: str | None,
) -> list[Match]:
    """Students other than `student_id` already enrolled with a matching face, closest first."""
    others = [t for t in templates if t.student_id != student_id]
    return rank(probe, others, model_version, within=threshold)
