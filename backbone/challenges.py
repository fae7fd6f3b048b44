"""Liveness challenges, issued by the service a terminal or the app talks to (spotcheck for
check-ins, enrolment for new captures) and answered by one capture.

Protocol (docs/liveness.md):
1. ``POST .../challenges`` {"student_id"} -> 201 {"challenge_id", "action", "issued_at",
   "expires_at"}: the action (``blink``, ``turn_left``, ``turn_right``) is drawn at random by
   the server and recorded (LivenessChallengeIssued, stream ``challenge-<id>``).
2. The device prompts the student and takes 3..10 frames in one go, noting each frame's time.
3. The capture names ``challenge_id`` and sends ``frame_times_ms``; the service checks the
   challenge (issued to this device for this student, this purpose and check, not expired,
   not answered before: the capture takes the challenge id as its capture id, so a second
   capture of the same challenge is refused) and puts the action into CaptureSubmitted.
   facematch decides whether the frames show it.
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field

from backbone.errors import Conflict, Forbidden, NotFound
from backbone.fields import Id, Model
from contracts.envelope import Envelope
from contracts.events import CaptureSubmitted, LivenessChallengeIssued
from contracts.students import capture_stream

ACTIONS: tuple[Literal["blink", "turn_left", "turn_right"], ...] = ("blink", "turn_left", "turn_right")
#: how long a challenge can be answered: long enough to prompt and capture, too short to prepare
TTL = timedelta(seconds=120)
#: a client's frame timestamp, ms of its monotonic clock (any non-negative integer JavaScript holds)
FrameTime = Annotated[int, Field(ge=0, le=2**53)]


class IssueChallenge(Model):
    """Ask for a liveness challenge for the next capture of this student."""

    student_id: Id


class ChallengeAnswer(Model):
    challenge_id: str
    action: Literal["blink", "turn_left", "turn_right"] = Field(
        description="what the student must do during the burst: blink, turn_left or turn_right "
                    "(the student's own left/right)")
    issued_at: str
    expires_at: str


def challenge_stream(challenge_id: str) -> str:
    return f"challenge-{challenge_id}"


def issue(student_id: str, school_id: str, purpose: Literal["enrolment", "spot_check"],
          channel: Literal["terminal", "app"], now: datetime, terminal_id: str | None = None,
          check_id: str | None = None) -> LivenessChallengeIssued:
    return LivenessChallengeIssued(
        challenge_id=str(uuid.uuid4()), action=secrets.choice(ACTIONS), student_id=student_id,
        school_id=school_id, purpose=purpose, channel=channel, issued_at=now.isoformat(),
        expires_at=(now + TTL).isoformat(), terminal_id=terminal_id, check_id=check_id)


def answer(event: LivenessChallengeIssued) -> ChallengeAnswer:
    return ChallengeAnswer(challenge_id=event.challenge_id, action=event.action, issued_at=event.issued_at,
                           expires_at=event.expires_at)


def issued(envelopes: Sequence[Envelope]) -> LivenessChallengeIssued | None:
    for envelope in envelopes:
        if envelope.type == "LivenessChallengeIssued":
            return LivenessChallengeIssued(**envelope.payload)
    return None


def lookup(store: Any, challenge_id: str) -> tuple[LivenessChallengeIssued | None, bool]:
    """(the challenge as issued or None, whether a capture answered it already) from the event
    store (`read_stream`)."""
    return (issued(store.read_stream(challenge_stream(challenge_id))),
            bool(store.read_stream(capture_stream(challenge_id))))


def answered_by(capture: CaptureSubmitted, challenge: LivenessChallengeIssued | None, already_used: bool,
                frame_times_ms: Sequence[int] | None, now: datetime) -> CaptureSubmitted:
    """The capture as the answer to `challenge` (its id becomes the capture id), or a refusal:
    UNKNOWN_CHALLENGE (404), CHALLENGE_MISMATCH (403: another student, purpose, check or
    device), CHALLENGE_EXPIRED or CHALLENGE_USED (409)."""
    if challenge is None:
        raise NotFound("UNKNOWN_CHALLENGE", "no such liveness challenge")
    same = (challenge.student_id == capture.student_id and challenge.purpose == capture.purpose
            and challenge.check_id == capture.check_id and challenge.channel == capture.channel
            and challenge.terminal_id == capture.terminal_id)
    if not same:
        raise Forbidden("CHALLENGE_MISMATCH", "the challenge was issued for another capture")
    if already_used:
        raise Conflict("CHALLENGE_USED", "the challenge was answered already; ask for a new one")
    if now > datetime.fromisoformat(challenge.expires_at):
        raise Conflict("CHALLENGE_EXPIRED", "the challenge expired; ask for a new one")
    return dataclasses.replace(capture, capture_id=challenge.challenge_id,
                               challenge_id=challenge.challenge_id, challenge_action=challenge.action,
                               frame_times_ms=list(frame_times_ms) if frame_times_ms is not None else None)


def with_frame_times(capture: CaptureSubmitted, frame_times_ms: Sequence[int] | None) -> CaptureSubmitted:
    """An unchallenged capture keeps the client's frame times if it sent them."""
    if frame_times_ms is None:
        return capture
    return dataclasses.replace(capture, frame_times_ms=list(frame_times_ms))
