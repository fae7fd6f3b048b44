"""Issue 9: a student who left school (StudentLeft), and checks failed while away on an internship
(InternshipDeparted / InternshipReturned), each rule stated as an event history."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path
from typing import Any

from contracts.eligibility_status import EligibilityStatus
from services.eligibility.domain import Ledger
from services.eligibility.domain.facts import StudentFacts
from services.eligibility.logsource import jsonl_events
from services.eligibility.replay import replay as audit_replay
from tests.eligibility.elig_builders import (
    AUTUMN_2026,
    SPRING_2027,
    Log,
    at,
    grant,
    month,
    replay,
    status,
    withheld,
    write_jsonl,
)

AUTUMN_MONTHS = ["2026-09", "2026-10", "2026-11", "2026-12", "2027-01"]


def history(sid: str = "S1") -> tuple[Log, dict[str, str]]:
    log = Log()
    log.ordinary(sid)
    return log, log.routine_checks()


# --------------------------------------------------------------------------- leaving school


def test_aid_stops_from_the_month_after_the_leaving_day() -> None:
    log, checks = history()
    log.pass_checks("S1", checks, except_months=["2026-11", "2026-12"])
    left = log.left("S1", "2026-11-05", "withdrawn")
    st = status(log, "S1")
    EligibilityStatus.from_dict(st)  # the schema's model reads it
    assert withheld(st) == ["2026-12", "2027-01"]
    assert grant(st)["2026-11"] == "granted"  # the leaving month is paid
    dec = next(g for g in st["grant"] if g["month"] == "2026-12")
    assert dec["rules"][0] == {"rule": "left_school", "month": "2026-11", "event_ids": [str(left.event_id)]}
    # the Nov check (Nov 12) came after the leaving day: not a failure, not pending
    nov = month(st, "2026-11")
    assert (nov["status"], nov["outcome"]) == ("left_school", "left")
    assert nov["checks"][0]["result"] == "left"
    assert (month(st, "2026-12")["status"], month(st, "2026-12")["outcome"]) == ("left_school", "left")
    # only October passed: no run of three consecutive passed check months, ever
    assert st["tuition_waiver"]["decision"] == "denied"
    waiver_rules = [r["rule"] for r in st["tuition_waiver"]["rules"]]
    assert waiver_rules == ["left_school", "fewer_than_consecutive_passed"]


def test_a_check_failed_before_the_leaving_day_keeps_its_result() -> None:
    log, checks = history()
    log.left("S1", "2026-10-25", "transferred", to_school="4101000002")
    st = status(log, "S1")
    assert month(st, "2026-10")["outcome"] == "failed"  # Oct 22 check, missed while still at school
    assert withheld(st) == AUTUMN_MONTHS
    rules = {g["month"]: g["rules"][0]["rule"] for g in st["grant"]}
    assert rules["2026-09"] == rules["2026-10"] == "failed_check_month"
    assert rules["2026-11"] == rules["2026-12"] == rules["2027-01"] == "left_school"


def test_leaving_after_the_last_check_withholds_only_the_months_after() -> None:
    log, checks = history()
    log.pass_checks("S1", checks)
    log.left("S1", "2026-12-20", "graduated")
    st = status(log, "S1")
    assert withheld(st) == ["2027-01"]
    assert [m["outcome"] for m in st["months"]] == ["passed", "passed", "passed"]
    assert st["tuition_waiver"]["decision"] == "granted"


def test_leaving_on_the_check_day_still_takes_part_in_that_check() -> None:
    log, checks = history()
    log.pass_checks("S1", checks, except_months=["2026-11", "2026-12"])
    log.left("S1", AUTUMN_2026["2026-11"].isoformat())  # the day of the Nov check: not after it
    st = status(log, "S1")
    assert month(st, "2026-11")["outcome"] == "failed"
    assert month(st, "2026-11")["checks"][0]["reason"] == "no_capture"


def test_no_semester_after_the_leaving_is_derived() -> None:
    log, checks = history()
    log.pass_checks("S1", checks)
    log.routine_checks("2027-spring")
    log.left("S1", "2026-12-20")
    statuses = replay(log.events)
    assert ("S1", "2026-autumn") in statuses
    assert ("S1", "2027-spring") not in statuses


def test_the_audit_replay_as_of_before_the_leaving_shows_the_earlier_status(tmp_path: Path) -> None:
    log, checks = history()
    log.pass_checks("S1", checks, except_months=["2026-12"])
    log.left("S1", "2026-11-20", recorded=at("2026-12-15", 10))  # recorded after the Dec check
    path = tmp_path / "log.jsonl"
    write_jsonl(path, log.events)

    def as_of(day: str) -> dict[str, Any]:
        (st,) = [s for s in audit_replay(jsonl_events(path, as_of=at(day, 23)))
                 if s["student_id"] == "S1" and s["semester"] == "2026-autumn"]
        return st

    before, after = as_of("2026-12-14"), as_of("2026-12-15")
    assert withheld(before) == ["2026-12", "2027-01"]  # Dec check failed, nothing known of a leaving
    assert month(before, "2026-12")["outcome"] == "failed"
    assert [g["rules"][0]["rule"] for g in before["grant"] if g["decision"] == "withheld"] == \
        ["failed_check_month", "failed_check_month"]
    assert withheld(after) == ["2026-12", "2027-01"]
    assert {g["rules"][0]["rule"] for g in after["grant"] if g["decision"] == "withheld"} == {"left_school"}
    assert month(after, "2026-12")["status"] == "left_school"


def test_leaving_facts_fold_in_any_order_and_round_trip() -> None:
    log, checks = history()
    log.pass_checks("S1", checks)
    log.left("S1", "2026-11-05")
    log.plan("S1", "2026-11-01", "2027-01-31", filed_on="2026-10-01")
    log.departed("S1", "2026-11-01", "2026-11-01")
    log.returned("S1", "2026-11-01", "2026-11-20")
    expected = replay(log.events)
    events = list(log.events)
    random.Random(9).shuffle(events)
    assert replay(events + events[:5]) == expected
    ledger = Ledger()
    for env in log.events:
        ledger.apply(env)
    facts = ledger.students["S1"]
    assert facts.leaving is not None and facts.leaving.left_on == "2026-11-05"
    assert StudentFacts.from_json(facts.to_json()) == facts


def test_a_later_semester_leaving_leaves_the_earlier_semester_whole() -> None:
    log, checks = history()
    log.pass_checks("S1", checks)
    spring = log.routine_checks("2027-spring")
    log.hardship("S1", semester="2027-spring", determination="det-spring")
    log.pass_checks("S1", spring, except_months=["2027-06"], semester="2027-spring")
    log.left("S1", "2027-05-31", "withdrawn")
    assert withheld(status(log, "S1")) == []
    spring_status = status(log, "S1", "2027-spring")
    assert withheld(spring_status) == ["2027-06", "2027-07"]
    assert month(spring_status, "2027-06")["outcome"] == "left"
    assert SPRING_2027["2027-06"] > date(2027, 5, 31)


# --------------------------------------------------------------------------- away on an internship


def away_on_plan(filed_on: str, *, returned_on: str | None = None) -> dict[str, Any]:
    """Away on a shadowing internship from Nov 1 (3 months), the Nov 12 check missed, no absence marked."""
    log, checks = history()
    log.pass_checks("S1", checks, except_months=["2026-11"])
    log.plan("S1", "2026-11-01", "2027-01-31", filed_on=filed_on)
    log.departed("S1", "2026-11-01", "2026-11-01")
    if returned_on is not None:
        log.returned("S1", "2026-11-01", returned_on)
    return status(log, "S1")


def test_a_check_missed_while_away_on_a_late_filed_plan_says_so_and_suspends_the_semester() -> None:
    st = away_on_plan("2026-10-25")  # 7 days before departure: late
    check = month(st, "2026-11")["checks"][0]
    assert (check["result"], check["reason"]) == ("failed", "internship_filed_late")
    assert len(check["event_ids"]) == 4  # check, plan, departure, closing
    (note,) = month(st, "2026-11")["notes"]
    assert note == ("check R-2026-11: not passed while away on internship plan P-S1-2026-11-01 (departed"
                    " 2026-11-01), filed on 2026-10-25, fewer than 15 days before 2026-11-01: filed late"
                    " (未按要求备案)")
    assert st["suspension"] is not None and st["suspension"]["months"] == ["2026-11"]
    assert withheld(st) == AUTUMN_MONTHS
    assert st["tuition_waiver"]["decision"] == "denied"


def test_a_check_missed_while_away_on_a_plan_filed_in_time_is_excused() -> None:
    st = away_on_plan("2026-10-17")  # 15 days before departure: in time
    nov = month(st, "2026-11")
    assert (nov["outcome"], nov["excuse"]) == ("passed", "shadowing_internship")
    assert st["suspension"] is None and withheld(st) == []


def test_an_unfiled_or_late_internship_absence_is_explained_in_the_month() -> None:
    late = "whose plan was filed fewer than 15 days before departure (未按要求备案)"
    for filed_on, tail in ((None, "without a filed plan (未备案)"), ("2026-10-20", late)):
        log, checks = history()
        log.pass_checks("S1", checks, except_months=["2026-11"])
        if filed_on is not None:
            log.plan("S1", "2026-11-01", "2027-01-31", filed_on=filed_on)
        log.absent("S1", checks["2026-11"], "shadowing_internship", at("2026-11-12", 9),
                   starts_on="2026-11-01", ends_on="2027-01-31")
        (note,) = month(status(log, "S1"), "2026-11")["notes"]
        assert note == f"check R-2026-11: absent for an internship of 3 full months or more {tail}"


def test_back_from_the_internship_before_the_check_is_an_ordinary_failure() -> None:
    for returned_on in ("2026-11-10", AUTUMN_2026["2026-11"].isoformat()):  # the return day is at school
        st = away_on_plan("2026-10-25", returned_on=returned_on)
        check = month(st, "2026-11")["checks"][0]
        assert (check["result"], check["reason"]) == ("failed", "no_capture")
        assert st["suspension"] is None
        assert withheld(st) == ["2026-11"]


def test_a_leave_marked_while_away_is_decided_as_a_leave() -> None:
    log, checks = history()
    log.pass_checks("S1", checks, except_months=["2026-11"])
    log.plan("S1", "2026-11-01", "2027-01-31", filed_on="2026-10-25")
    log.departed("S1", "2026-11-01", "2026-11-01")
    log.absent("S1", checks["2026-11"], "leave", at("2026-11-12", 9))
    st = status(log, "S1")
    assert month(st, "2026-11")["excuse"] == "leave"
    assert st["suspension"] is None
