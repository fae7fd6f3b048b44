"""Contracts: schemas match the models, validation names the broken field, upcasting reads v1."""

from __future__ import annotations

import json
import uuid

import pytest

from contracts import Actor, ContractError, build_envelope, parse_envelope, validate_envelope
from contracts.__main__ import main as contracts_main
from contracts.events import ALL_EVENTS, CaptureRejected, StudentRegisteredV1
from contracts.identity import (
    InvalidIdNumber,
    check_digit,
    hash_id_number,
    mask_id_number,
    mask_name,
    normalise_id_number,
)

ACTOR = Actor(kind="terminal", id="T1", school="SC1")


def rejected() -> CaptureRejected:
    return CaptureRejected(capture_id="c1", student_id="S1", school_id="SC1", purpose="spot_check",
                           channel="app", reasons=["NO_MATCH"], quality={"sharpness": 12.5},
                           liveness={"passed": True}, model_version="m1", check_id="k1", distance=0.7,
                           threshold=0.55)


def test_schema_files_are_generated_from_the_models() -> None:
    assert contracts_main(["check"]) == 0


def test_every_event_type_has_a_schema_file() -> None:
    from contracts.registry import SCHEMA_DIR

    for cls in ALL_EVENTS:
        assert (SCHEMA_DIR / f"{cls.TYPE}.v{cls.VERSION}.json").exists()


def test_a_valid_envelope_round_trips_through_json() -> None:
    envelope = build_envelope(rejected(), stream="capture-c1", actor=ACTOR)
    wire = json.loads(json.dumps(envelope.to_dict()))
    parsed = parse_envelope(wire)
    assert parsed.event_id == envelope.event_id and parsed.payload == envelope.payload


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["payload"].pop("reasons"), "required"),
    (lambda d: d["payload"].update(channel="fax"), "channel"),
    (lambda d: d["payload"].update(image="AAAA"), "additionalProperties"),
    (lambda d: d.update(event_id="not-a-uuid"), "event_id"),
    (lambda d: d.update(schema_version=9), "unknown event type or version"),
    (lambda d: d.update(type="NoSuchEvent"), "unknown event type"),
    (lambda d: d["actor"].update(kind="alien"), "actor"),
])
def test_an_invalid_envelope_is_refused_with_the_field_named(mutate, field) -> None:  # type: ignore[no-untyped-def]
    data = build_envelope(rejected(), stream="capture-c1", actor=ACTOR).to_dict()
    mutate(data)
    with pytest.raises(ContractError, match=field):
        validate_envelope(data)


def test_a_non_object_is_refused() -> None:
    with pytest.raises(ContractError):
        validate_envelope(["not", "an", "envelope"])


def test_an_error_message_does_not_repeat_the_offending_value() -> None:
    data = build_envelope(rejected(), stream="capture-c1", actor=ACTOR).to_dict()
    data["payload"]["student_id"] = 110101200703070015
    with pytest.raises(ContractError) as info:
        validate_envelope(data)
    assert "110101200703070015" not in info.value.reason


def test_student_registered_v1_is_upcast_to_v2() -> None:
    old = StudentRegisteredV1(student_id="S1", school_id="SC1", name_masked="张*", id_number_hash="h",
                              id_number_masked="110101********0015", grade=1, class_name="c", major="m",
                              enrolment_year=2025, enrolment_season="autumn", proposed_aid=True)
    wire = build_envelope(old, stream="student-S1", actor=ACTOR, event_id=uuid.uuid4()).to_dict()
    assert wire["schema_version"] == 1
    parsed = parse_envelope(wire)
    assert parsed.schema_version == 2
    assert parsed.payload["school"]["school_id"] == "SC1" and "school_id" not in parsed.payload


def test_id_number_check_digit_follows_mod_11_2() -> None:
    assert check_digit("11010519491231002") == "X"  # the GB 11643 example
    assert normalise_id_number("11010519491231002x") == "11010519491231002X"


@pytest.mark.parametrize("bad, why", [
    ("1101051949123100", "18 characters"),
    ("11010519491231002A", "17 digits"),
    ("110105194913310021", "birth date"),
    ("110105194912310021", "check digit"),
])
def test_invalid_id_numbers_are_refused_without_echoing_them(bad: str, why: str) -> None:
    with pytest.raises(InvalidIdNumber, match=why) as info:
        normalise_id_number(bad)
    assert bad not in str(info.value)


def test_id_numbers_are_hashed_with_a_key_and_masked() -> None:
    a = hash_id_number(b"k1", "11010519491231002X")
    assert a == hash_id_number(b"k1", "11010519491231002x") != hash_id_number(b"k2", "11010519491231002X")
    assert mask_id_number("11010519491231002X") == "110105********002X"
    assert mask_name("张三") == "张*" and mask_name("欧阳娜娜") == "欧阳**"
