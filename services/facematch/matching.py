"""1:1 and 1:N decisions over embeddings: pure functions, no models.

`distance` is the one face distance of facematch: the engine, the 1:N searches, the error-rate
evaluation and the benchmark all call it.
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


def distance(a: Vector, b: Vector) -> float:
    """Euclidean distance between two embeddings."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def is_match(dist: float, threshold: float) -> bool:
    return dist <= threshold


def rank(
    probe: Vector, templates: Iterable[Template], model_version: str, within: float = float("inf")
) -> list[Match]:
    """Templates of `model_version` within distance `within` of `probe`, closest first (one row
    per student: their closest template)."""
    best: dict[str, float] = {}
    for template in templates:
        if template.model_version != model_version:
            continue
        dist = distance(probe, template.vector)
        if dist <= within and dist < best.get(template.student_id, float("inf")):
            best[template.student_id] = dist
    return sorted((Match(sid, d) for sid, d in best.items()), key=lambda m: (m.distance, m.student_id))


def proxy_suspect(
    probe: Vector, claimed: Template, school_templates: Sequence[Template], threshold: float
) -> Match | None:
    """Another student whose template matches the capture at least as closely as the claimed
    student's does: the capture is probably that other student checking in for the claimed one."""
    claimed_distance = distance(probe, claimed.vector)
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
