"""From a face-matching Outcome to the event that reports it, and the template to keep.

Events carry scores, measures, reasons and references, never an image or an embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from contracts.events import CaptureRejected, CaptureVerified, DuplicateFaceHeld
from services.facematch.engine import Outcome
from services.facematch.index import Hit
from services.facematch.liveness import Challenge
from services.facematch.reasons import Code
from services.facematch.templates import Template

# Enrolment reasons after which the live face is still kept as the (provisional) template.
KEEP_TEMPLATE_DESPITE = frozenset({Code.NO_MATCH})


def template_ref(student_id: str, model_version: str) -> str:
    return f"template:{student_id}:{model_version}"


def result_event(capture: dict[str, Any], outcome: Outcome) -> CaptureVerified | CaptureRejected:
    common = {
        "capture_id": capture["capture_id"], "student_id": capture["student_id"],
        "school_id": capture["school_id"], "purpose": capture["purpose"], "channel": capture["channel"],
        "check_id": capture.get("check_id"), "model_version": outcome.model_version,
        "quality": dict(outcome.quality), "liveness": dict(outcome.liveness),
        "captured_at": capture.get("captured_at"),
    }
    if outcome.accepted and outcome.distance is not None:
        enrolment = capture["purpose"] == "enrolment"
        ref = template_ref(capture["student_id"], outcome.model_version) if enrolment else None
        return CaptureVerified(distance=round(outcome.distance, 4), threshold=outcome.threshold,
                               template_ref=ref, **common)
    return CaptureRejected(reasons=list(outcome.reasons) or [Code.NO_MATCH],
                           distance=None if outcome.distance is None else round(outcome.distance, 4),
                           threshold=outcome.threshold, suspected_student_id=outcome.suspected_student_id,
                           **common)


def template_to_keep(capture: dict[str, Any], outcome: Outcome) -> Template | None:
    """The enrolment template: verified captures, and provisional ones (identity not confirmed)."""
    if capture["purpose"] != "enrolment" or outcome.embedding is None:
        return None
    if not outcome.accepted and not set(outcome.reasons) <= KEEP_TEMPLATE_DESPITE:
        return None
    return Template(student_id=capture["student_id"], school_id=capture["school_id"],
                    model_version=outcome.model_version, vector=outcome.embedding,
                    created_at=datetime.now(UTC), source_photo_ref=capture["frame_refs"][0])


def challenge_of(capture: dict[str, Any]) -> Challenge | None:
    """The liveness challenge a CaptureSubmitted answers (None for old clients' captures)."""
    action = capture.get("challenge_action")
    if not action:
        return None
    times = capture.get("frame_times_ms")
    return Challenge(str(action), tuple(int(t) for t in times) if times is not None else None)


def with_duplicates(capture: dict[str, Any], outcome: Outcome, hits: Sequence[Hit]) -> Outcome:
    """An enrolment outcome with the province's 1:N search applied: a face already enrolled
    for another student is DUPLICATE_IDENTITY (the closest named as suspected)."""
    if capture["purpose"] != "enrolment" or outcome.embedding is None or not hits:
        return outcome
    if Code.DUPLICATE_IDENTITY in outcome.reasons:
        return outcome
    return replace(outcome, accepted=False, reasons=[*outcome.reasons, Code.DUPLICATE_IDENTITY],
                   suspected_student_id=hits[0].student_id)


def duplicate_held(capture: dict[str, Any], outcome: Outcome, hits: Sequence[Hit],
                   threshold: float) -> DuplicateFaceHeld | None:
    """The province's review item for an enrolment held as a duplicate: both students named."""
    if capture["purpose"] != "enrolment" or Code.DUPLICATE_IDENTITY not in outcome.reasons or not hits:
        return None
    other = hits[0]
    return DuplicateFaceHeld(capture_id=capture["capture_id"], student_id=capture["student_id"],
                             school_id=capture["school_id"], other_student_id=other.student_id,
                             other_school_id=other.school_id, distance=round(other.distance, 4),
                             threshold=threshold, model_version=outcome.model_version)


def rejected_without_matching(capture: dict[str, Any], reason: Code, model_version: str) -> CaptureRejected:
    return CaptureRejected(
        capture_id=capture["capture_id"], student_id=capture["student_id"], school_id=capture["school_id"],
        purpose=capture["purpose"], channel=capture["channel"], check_id=capture.get("check_id"),
        reasons=[reason], quality={}, liveness={}, model_version=model_version,
        captured_at=capture.get("captured_at"),
    )
