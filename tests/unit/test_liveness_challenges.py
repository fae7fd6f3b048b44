"""Liveness challenges at the services a device talks to (backbone/challenges.py): drawn at
random, bound to one student, purpose, check and device, answered once, before they expire."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from backbone import challenges
from backbone.config import load
from backbone.errors import Conflict, DomainError, Forbidden, NotFound
from contracts.events import CaptureSubmitted

NOW = datetime(2026, 10, 22, 10, 30, tzinfo=UTC)


def capture(**over: object) -> CaptureSubmitted:
    fields: dict[str, object] = dict(
        capture_id="c-1", student_id="A0001", school_id="SC1", purpose="spot_check", channel="terminal",
        frame_refs=["blob:1"] * 3, captured_at=NOW.isoformat(), terminal_id="T1", check_id="K1")
    fields.update(over)
    return CaptureSubmitted(**fields)  # type: ignore[arg-type]


def test_the_action_is_drawn_at_random_from_the_three() -> None:
    drawn = Counter(challenges.issue("A0001", "SC1", "spot_check", "terminal", NOW, "T1", "K1").action
                    for _ in range(300))
    assert set(drawn) == {"blink", "turn_left", "turn_right"} and min(drawn.values()) > 50


def test_a_capture_answering_its_challenge_carries_the_action_and_times() -> None:
    issued = challenges.issue("A0001", "SC1", "spot_check", "terminal", NOW, "T1", "K1")
    answer = challenges.answer(issued)
    lifetime = datetime.fromisoformat(answer.expires_at) - datetime.fromisoformat(answer.issued_at)
    assert lifetime == challenges.TTL
    event = challenges.answered_by(capture(), issued, False, [0, 200, 400], NOW + timedelta(seconds=30))
    assert event.capture_id == event.challenge_id == issued.challenge_id  # one capture per challenge
    assert (event.challenge_action, event.frame_times_ms) == (issued.action, [0, 200, 400])
    assert challenges.with_frame_times(capture(), [1, 2, 3]).frame_times_ms == [1, 2, 3]
    assert challenges.with_frame_times(capture(), None).challenge_id is None


@pytest.mark.parametrize(("change", "error", "code"), [
    ({"student_id": "B0001"}, Forbidden, "CHALLENGE_MISMATCH"),
    ({"check_id": "K2"}, Forbidden, "CHALLENGE_MISMATCH"),
    ({"terminal_id": "T2"}, Forbidden, "CHALLENGE_MISMATCH"),
    ({"channel": "app", "terminal_id": None}, Forbidden, "CHALLENGE_MISMATCH"),
    ({"purpose": "enrolment", "check_id": None}, Forbidden, "CHALLENGE_MISMATCH"),
])
def test_a_challenge_answers_only_the_capture_it_was_issued_for(change: dict[str, object],
                                                                 error: type[DomainError], code: str) -> None:
    issued = challenges.issue("A0001", "SC1", "spot_check", "terminal", NOW, "T1", "K1")
    with pytest.raises(error) as refused:
        challenges.answered_by(capture(**change), issued, False, None, NOW)
    assert refused.value.code == code


def test_unknown_used_and_expired_challenges_are_refused() -> None:
    issued = challenges.issue("A0001", "SC1", "spot_check", "terminal", NOW, "T1", "K1")
    with pytest.raises(NotFound):
        challenges.answered_by(capture(), None, False, None, NOW)
    with pytest.raises(Conflict) as used:
        challenges.answered_by(capture(), issued, True, None, NOW)
    assert used.value.code == "CHALLENGE_USED"
    with pytest.raises(Conflict) as late:
        challenges.answered_by(capture(), issued, False, None, NOW + challenges.TTL + timedelta(seconds=1))
    assert late.value.code == "CHALLENGE_EXPIRED"


def test_which_channels_may_capture_without_a_challenge() -> None:
    assert load({}).face_unchallenged == ("app", "terminal")  # development and tests: old clients work
    production = {"AID_ENV": "production", "AID_SECRET_KEY": "ab" * 32, "AID_ID_HASH_KEY": "k" * 32,
                  "AID_AMQP_URL": "amqp://u:p@mq:5672/aid", "AID_AMQP_USER": "u", "AID_AMQP_PASSWORD": "p"}
    assert load(production).face_unchallenged == ()
    assert load({"AID_FACE_UNCHALLENGED": "app"}).face_unchallenged == ("app",)
    assert load({"AID_FACE_UNCHALLENGED": ""}).face_unchallenged == ()
    with pytest.raises(Exception, match="AID_FACE_UNCHALLENGED"):
        load({"AID_FACE_UNCHALLENGED": "fax"})
