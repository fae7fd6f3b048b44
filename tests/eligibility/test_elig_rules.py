"""One test per rule of DOMAIN.md §1-5 (and the seed), each stated as an event history."""

from __future__ import annotations

import copy
import random
from datetime import date

import pytest

from tests.eligibility.elig_builders import (
    AUTUMN_2026,
    SPRING_2027,
    Log,
    at,
    book_from,
    grant,
    month,
    policy_data,
    replay,
    status,
    withheld,
)

AUTUMN_MONTHS = ["2026-09", "2026-10", "2026-11", "2026-12", "2027-01"]


def ordinary_with_checks(sid: str = "S1", semester: str = "2026-autumn") -> tuple[Log, dict[str, str]]:
    log = Log()
    log.ordinary(sid)
    return log, log.routine_checks(semester)


# --------------------------------------------------------------------------- §5 grant table


@pytest.mark.parametrize(
    ("semester", "failed", "expected"),
    [
        ("2026-autumn", "2026-10", ["2026-09", "2026-10"]),
        ("2026-autumn", "2026-11", ["2026-11"]),
        ("2026-autumn", "2026-12", ["2026-12", "2027-01"]),
        ("2027-spring", "2027-04", ["2027-03", "2027-04"]),
        ("2027-spring", "2027-05", ["2027-05"]),
        ("2027-spring", "2027-06", ["2027-06", "2027-07"]),
    ],
)
def test_grant_table_failed_check_month_withholds_its_months(
    semester: str, failed: str, expected: list[str]
) -> None:
    log, checks = ordinary_with_checks(semester=semester)
    log.pass_checks("S1", checks, except_months=[failed], semester=semester)
    st = status(log, "S1", semester)
    assert month(st, failed)["outcome"] == "failed"
    assert withheld(st) == expected
    rule = next(g for g in st["grant"] if g["month"] == expected[0])["rules"][0]
    assert rule["rule"] == "failed_check_month" and rule["month"] == failed
    assert set(rule["event_ids"]) <= {str(e.event_id) for e in log.events}
    assert all(d == "granted" for m, d in grant(st).items() if m not in expected)


def test_all_checks_passed_grants_every_month_and_the_waiver() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks)
    st = status(log, "S1")
    assert grant(st) == dict.fromkeys(AUTUMN_MONTHS, "granted")
    assert st["grant_total_yuan"] == 5 * 167
    assert st["tuition_waiver"]["decision"] == "granted"


# --------------------------------------------------------------------------- §5 tuition waiver


def test_waiver_three_check_months_one_failed_is_denied() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-12"])
    waiver = status(log, "S1")["tuition_waiver"]
    assert waiver["decision"] == "denied"
    assert waiver["longest_passed_run"] == 2
    assert waiver["rules"][0]["rule"] == "fewer_than_consecutive_passed"


def _four_check_months_book():  # type: ignore[no-untyped-def]
    data = policy_data()
    autumn = data["versions"][0]["semesters"]["autumn"]
    autumn["check_months"] = [10, 11, 12, 1]
    autumn["grant_withheld_when_failed"] = {10: [9, 10], 11: [11], 12: [12], 1: [1]}
    return book_from(data)


@pytest.mark.parametrize(
    ("failed", "decision", "run"),
    [("2026-11", "denied", 2), ("2026-10", "granted", 3), ("2027-01", "granted", 3)],
)
def test_waiver_four_check_months_needs_three_consecutive(failed: str, decision: str, run: int) -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks)
    del checks["2026-10"], checks["2026-11"], checks["2026-12"]
    jan = log.check("R-2027-01", "2027-01", date(2027, 1, 7))
    by_month = {"2026-10": "R-2026-10", "2026-11": "R-2026-11", "2026-12": "R-2026-12", "2027-01": jan}
    # remove the capture of the failed month by rebuilding without it
    keep = [e for e in log.events
            if not (e.type == "CaptureVerified" and e.payload["check_id"] == by_month[failed])]
    log.events = keep
    if failed != "2027-01":
        log.passed("S1", jan, date(2027, 1, 7))
    st = status(log, "S1", book=_four_check_months_book())
    assert [m["month"] for m in st["months"]] == list(by_month)
    assert st["tuition_waiver"]["decision"] == decision
    assert st["tuition_waiver"]["longest_passed_run"] == run


def test_waiver_pending_while_a_check_month_is_still_to_come() -> None:
    log = Log()
    log.ordinary("S1")
    oct_check = log.check("R-2026-10", "2026-10", AUTUMN_2026["2026-10"])
    log.passed("S1", oct_check, AUTUMN_2026["2026-10"])
    st = status(log, "S1")
    assert st["tuition_waiver"]["decision"] == "pending"
    assert month(st, "2026-11")["outcome"] == "no_check"
    assert grant(st) == {"2026-09": "granted", "2026-10": "granted", "2026-11": "pending",
                         "2026-12": "pending", "2027-01": "pending"}


def test_open_check_without_a_result_is_pending_until_closed() -> None:
    log = Log()
    log.ordinary("S1")
    day = AUTUMN_2026["2026-10"]
    log.check("R-2026-10", "2026-10", day, closed=False)
    assert month(status(log, "S1"), "2026-10")["outcome"] == "pending"
    assert grant(status(log, "S1"))["2026-09"] == "pending"
    log.closed("R-2026-10", day)
    assert month(status(log, "S1"), "2026-10")["outcome"] == "failed"


# --------------------------------------------------------------------------- §2 checks


def test_capture_outside_the_window_does_not_pass() -> None:
    log, checks = ordinary_with_checks()
    log.passed("S1", checks["2026-10"], AUTUMN_2026["2026-10"], hour=16)
    st = status(log, "S1")
    assert month(st, "2026-10")["outcome"] == "failed"


def test_month_with_two_checks_passes_only_if_both_passed_or_excused() -> None:
    log, checks = ordinary_with_checks()
    second = log.check("R-2026-10-b", "2026-10", date(2026, 10, 28))
    log.passed("S1", checks["2026-10"], AUTUMN_2026["2026-10"])
    assert month(status(log, "S1"), "2026-10")["outcome"] == "failed"
    log.absent("S1", second, "leave", at(date(2026, 10, 28), 10, 30))
    st = month(status(log, "S1"), "2026-10")
    assert (st["outcome"], st["status"], st["excuse"]) == ("passed", "excused", "leave")


def test_leave_reported_within_two_hours_is_excused() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-10"])
    log.absent("S1", checks["2026-10"], "leave", at(AUTUMN_2026["2026-10"], 11, 59))
    m = month(status(log, "S1"), "2026-10")
    assert (m["status"], m["outcome"], m["excuse"]) == ("excused", "passed", "leave")
    assert grant(status(log, "S1"))["2026-09"] == "granted"


def test_leave_reported_after_two_hours_is_not_excused() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-10"])
    log.absent("S1", checks["2026-10"], "leave", at(AUTUMN_2026["2026-10"], 12, 1))
    m = month(status(log, "S1"), "2026-10")
    assert m["outcome"] == "failed"
    assert m["checks"][0]["reason"] == "leave_reported_late"
    assert withheld(status(log, "S1")) == ["2026-09", "2026-10"]


def test_short_cognitive_internship_is_excused() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-11"])
    log.absent("S1", checks["2026-11"], "cognitive_internship", at("2026-11-12", 9),
               starts_on="2026-11-01", ends_on="2026-12-20")
    st = status(log, "S1")
    assert month(st, "2026-11")["excuse"] == "cognitive_internship"
    assert st["suspension"] is None and withheld(st) == []


def test_unfiled_internship_of_three_months_with_a_failed_check_suspends_the_semester() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-11"])
    log.absent("S1", checks["2026-11"], "shadowing_internship", at("2026-11-12", 9),
               starts_on="2026-11-01", ends_on="2027-01-31")
    st = status(log, "S1")
    assert month(st, "2026-11")["checks"][0]["reason"] == "unfiled_internship"
    assert st["suspension"]["rule"] == "unfiled_internship"
    assert withheld(st) == AUTUMN_MONTHS
    assert {g["rules"][0]["rule"] for g in st["grant"]} == {"unfiled_internship"}
    assert st["tuition_waiver"]["decision"] == "denied"
    assert st["tuition_waiver"]["rules"][0]["rule"] == "unfiled_internship"


@pytest.mark.parametrize(("filed_on", "days_before"), [("2026-10-17", 15), ("2026-10-16", 16),
                                                      ("2026-08-01", 92)])
def test_internship_filed_fifteen_days_or_more_before_departure_is_excused(filed_on: str,
                                                                           days_before: int) -> None:
    """Issue 9's reading (authoritative): fewer than 15 days before departure is late; 15 or more
    is in time (the spotcheck service's ``filed_late`` agrees, tests/unit/test_internships.py)."""
    assert (date(2026, 11, 1) - date.fromisoformat(filed_on)).days == days_before
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-11"])
    log.plan("S1", "2026-11-01", "2027-01-31", filed_on=filed_on)
    log.absent("S1", checks["2026-11"], "shadowing_internship", at("2026-11-12", 9),
               starts_on="2026-11-01", ends_on="2027-01-31")
    st = status(log, "S1")
    assert month(st, "2026-11")["excuse"] == "shadowing_internship"
    assert st["suspension"] is None and withheld(st) == []


@pytest.mark.parametrize(("filed_on", "days_before"), [("2026-10-18", 14), ("2026-10-31", 1),
                                                      ("2026-11-01", 0)])
def test_internship_filed_fewer_than_fifteen_days_before_departure_is_late(filed_on: str,
                                                                          days_before: int) -> None:
    assert (date(2026, 11, 1) - date.fromisoformat(filed_on)).days == days_before
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-11"])
    log.plan("S1", "2026-11-01", "2027-01-31", filed_on=filed_on)
    log.absent("S1", checks["2026-11"], "shadowing_internship", at("2026-11-12", 9),
               starts_on="2026-11-01", ends_on="2027-01-31")
    st = status(log, "S1")
    assert month(st, "2026-11")["checks"][0]["reason"] == "internship_filed_late"
    assert st["suspension"] is not None and st["suspension"]["rule"] == "unfiled_internship"
    assert withheld(st) == AUTUMN_MONTHS


def test_unfiled_internship_month_won_back_on_appeal_lifts_the_suspension() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-11"])
    log.absent("S1", checks["2026-11"], "shadowing_internship", at("2026-11-12", 9),
               starts_on="2026-11-01", ends_on="2027-01-31")
    log.published("2026-11", "2026-12-01")
    log.appeal("S1", "2026-11", "2026-12-03", decision="approved")
    st = status(log, "S1")
    assert st["suspension"] is None
    assert month(st, "2026-11")["status"] == "passed_on_appeal"


def test_forced_pass_counts_as_passed_and_is_marked() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-12"])
    log.forced("S1", checks["2026-12"], AUTUMN_2026["2026-12"])
    st = status(log, "S1")
    m = month(st, "2026-12")
    assert (m["status"], m["outcome"]) == ("forced_pass", "passed")
    assert m["checks"][0]["result"] == "forced_pass"
    assert withheld(st) == [] and st["tuition_waiver"]["decision"] == "granted"


# --------------------------------------------------------------------------- §3 targeted


def test_targeted_check_failure_replaces_a_passed_routine_month() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks)
    log.check("T-1", "2026-11", date(2026, 11, 20), kind="targeted", students=["S1"])
    st = status(log, "S1")
    m = month(st, "2026-11")
    assert (m["status"], m["outcome"]) == ("replaced_by_targeted", "failed")
    assert m["replaced"] == {"status": "passed", "outcome": "passed"}
    assert withheld(st) == ["2026-11"]


def test_targeted_check_pass_replaces_a_failed_routine_month() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-11"])
    log.check("T-1", "2026-11", date(2026, 11, 20), kind="targeted", students=["S1"])
    log.passed("S1", "T-1", date(2026, 11, 20))
    st = status(log, "S1")
    m = month(st, "2026-11")
    assert (m["status"], m["outcome"]) == ("replaced_by_targeted", "passed")
    assert m["replaced"]["outcome"] == "failed"
    assert withheld(st) == []


def test_targeted_check_for_another_student_changes_nothing() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks)
    log.check("T-1", "2026-11", date(2026, 11, 20), kind="targeted", students=["S2"])
    assert month(status(log, "S1"), "2026-11")["status"] == "passed"


# --------------------------------------------------------------------------- appeals


def _failed_november() -> tuple[Log, dict[str, str]]:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-11"])
    log.published("2026-11", "2026-12-01")  # Tue; 5th working day after: Tue 2026-12-08
    return log, checks


def test_appeal_approved_in_time_passes_the_month() -> None:
    log, _ = _failed_november()
    log.appeal("S1", "2026-11", "2026-12-08", decision="approved")
    st = status(log, "S1")
    m = month(st, "2026-11")
    assert (m["status"], m["outcome"]) == ("passed_on_appeal", "passed")
    assert m["replaced"]["outcome"] == "failed"
    assert withheld(st) == []


def test_appeal_rejected_keeps_the_original_result() -> None:
    log, _ = _failed_november()
    log.appeal("S1", "2026-11", "2026-12-03", decision="rejected")
    m = month(status(log, "S1"), "2026-11")
    assert m["status"] == "failed" and "rejected" in m["notes"][0]


def test_appeal_not_handled_keeps_the_original_result() -> None:
    log, _ = _failed_november()
    log.appeal("S1", "2026-11", "2026-12-03")
    m = month(status(log, "S1"), "2026-11")
    assert m["status"] == "failed" and "not handled" in m["notes"][0]


def test_appeal_approved_after_the_month_it_was_filed_in_is_not_applied() -> None:
    log, _ = _failed_november()
    log.appeal("S1", "2026-11", "2026-12-03", decision="approved", resolved=at("2027-01-05", 10))
    m = month(status(log, "S1"), "2026-11")
    assert m["status"] == "failed" and "after the month" in m["notes"][0]


def test_late_objection_is_not_handled_even_if_approved() -> None:
    log, _ = _failed_november()
    log.appeal("S1", "2026-11", "2026-12-09", decision="approved")
    m = month(status(log, "S1"), "2026-11")
    assert m["status"] == "failed" and "late" in m["notes"][0]


def test_appeal_window_counts_working_days_with_swapped_working_days() -> None:
    # December results published Thu 2026-12-31; Fri 2027-01-01 is New Year, then a weekend:
    # the five working days are Jan 4..8.
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-12"])
    log.published("2026-12", "2026-12-31")
    log.appeal("S1", "2026-12", "2027-01-08", decision="approved", appeal_id="in-time")
    assert month(status(log, "S1"), "2026-12")["status"] == "passed_on_appeal"
    log2, checks2 = ordinary_with_checks()
    log2.pass_checks("S1", checks2, except_months=["2026-10"])
    # Published Fri 2026-10-09; Sat 10-10 is a swapped working day (调休), so the five working
    # days are 10-10, 10-12, 10-13, 10-14, 10-15: an objection on 10-16 is late.
    log2.published("2026-10", "2026-10-09")
    log2.appeal("S1", "2026-10", "2026-10-16", decision="approved")
    assert "late" in month(status(log2, "S1"), "2026-10")["notes"][0]
    log3, checks3 = ordinary_with_checks()
    log3.pass_checks("S1", checks3, except_months=["2026-10"])
    log3.published("2026-10", "2026-10-09")
    log3.appeal("S1", "2026-10", "2026-10-15", decision="approved")
    assert month(status(log3, "S1"), "2026-10")["status"] == "passed_on_appeal"


# --------------------------------------------------------------------------- §4 placement


def test_placement_starting_and_ending_mid_semester_suspends_grant_keeps_waiver() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-11"])
    log.placement("S1", "2026-11-01", "2026-11-30")
    st = status(log, "S1")
    nov = month(st, "2026-11")
    assert (nov["status"], nov["outcome"]) == ("placement_internship", "passed")
    assert nov["checks"][0]["result"] == "placement"
    assert withheld(st) == ["2026-11"]
    assert (
        next(g for g in st["grant"] if g["month"] == "2026-11")["rules"][0]["rule"] == "placement_internship"
    )
    assert st["tuition_waiver"]["decision"] == "granted"
    assert month(st, "2026-12")["status"] == "passed"  # ordinary student again


def test_placement_ended_early_makes_the_student_ordinary_again() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-11", "2026-12"])
    pid = log.placement("S1", "2026-11-01", "2027-01-31")
    log.placement_ended("S1", pid, "2026-11-30")
    st = status(log, "S1")
    assert month(st, "2026-11")["status"] == "placement_internship"
    assert month(st, "2026-12")["outcome"] == "failed"  # back in checks, absent
    assert withheld(st) == ["2026-11", "2026-12", "2027-01"]


def test_placement_of_a_first_year_student_is_ignored_with_a_reason() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-11"])
    log.placement("S1", "2026-11-01", "2026-11-30", grade=1)
    st = status(log, "S1")
    assert st["placements"][0]["ignored"] == "first_year_not_allowed"
    assert month(st, "2026-11")["outcome"] == "failed"


def test_placement_never_filed_is_ignored_with_a_reason() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-11"])
    log.placement("S1", "2026-11-01", "2026-11-30", filed_on=None)
    st = status(log, "S1")
    assert st["placements"][0]["ignored"] == "not_filed"
    assert month(st, "2026-11")["outcome"] == "failed"


# --------------------------------------------------------------------------- §1 new capture


def test_new_capture_after_the_deadline_fails_every_check_month_of_the_semester() -> None:
    log = Log()
    log.registered("S1")
    log.hardship("S1")
    log.enrolled("S1", when="2026-10-21")
    checks = log.routine_checks()
    log.pass_checks("S1", checks)
    st = status(log, "S1")
    assert st["participation"]["status"] == "not_enrolled_in_time"
    assert {m["status"] for m in st["months"]} == {"not_enrolled_in_time"}
    assert withheld(st) == AUTUMN_MONTHS
    assert st["tuition_waiver"]["decision"] == "denied"
    # The next semester the (once-per-career) enrolment counts.
    spring = log.routine_checks("2027-spring")
    log.pass_checks("S1", spring, semester="2027-spring")
    st = status(log, "S1", "2027-spring")
    assert st["participation"]["status"] == "enrolled"
    assert withheld(st) == []


def test_new_capture_on_the_deadline_day_is_in_time() -> None:
    log = Log()
    log.registered("S1")
    log.hardship("S1")
    env = log.enrolled("S1", when="2026-10-20")
    assert env.occurred_at.hour == 11
    checks = log.routine_checks()
    log.pass_checks("S1", checks)
    assert status(log, "S1")["participation"]["status"] == "enrolled"


def test_student_never_captured_fails_months_with_a_check() -> None:
    log = Log()
    log.registered("S1")
    log.hardship("S1")
    log.check("R-2026-10", "2026-10", AUTUMN_2026["2026-10"])
    st = status(log, "S1")
    assert st["participation"]["status"] == "not_enrolled"
    assert month(st, "2026-10")["status"] == "not_enrolled_in_time"
    assert month(st, "2026-11")["status"] == "no_check"


def test_provisional_enrolment_is_valid_for_one_semester_only() -> None:
    log = Log()
    log.registered("S1")
    log.hardship("S1")
    log.enrolled("S1", mode="provisional")
    autumn = log.routine_checks()
    log.pass_checks("S1", autumn)
    st = status(log, "S1")
    assert st["participation"]["status"] == "provisional"
    assert all(m["provisional"] and m["outcome"] == "passed" for m in st["months"])
    spring = log.routine_checks("2027-spring")
    log.pass_checks("S1", spring, semester="2027-spring")
    st = status(log, "S1", "2027-spring")
    assert st["participation"]["status"] == "not_enrolled"
    assert {m["status"] for m in st["months"]} == {"not_enrolled_in_time"}


def test_evidence_filed_enrolment_counts_like_a_verified_one() -> None:
    log = Log()
    log.registered("S1")
    log.hardship("S1")
    log.enrolled("S1", mode="evidence_filed", when="2026-10-15")
    log.pass_checks("S1", log.routine_checks())
    assert status(log, "S1")["participation"]["status"] == "enrolled"


# --------------------------------------------------------------------------- hardship, amounts


def test_no_hardship_determination_means_no_grant() -> None:
    log = Log()
    log.registered("S1")
    log.enrolled("S1")
    log.pass_checks("S1", log.routine_checks())
    st = status(log, "S1")
    assert withheld(st) == AUTUMN_MONTHS
    assert {g["rules"][0]["rule"] for g in st["grant"]} == {"no_hardship_determination"}
    assert st["tuition_waiver"]["decision"] == "granted"  # the waiver does not depend on hardship


def test_not_difficult_level_means_no_grant() -> None:
    log, checks = ordinary_with_checks()
    log.hardship("S1", level="not_difficult", determination="det-2", when="2026-09-20")
    log.pass_checks("S1", checks)
    st = status(log, "S1")
    assert st["hardship"]["status"] == "not_difficult"
    assert withheld(st) == AUTUMN_MONTHS


def test_revoked_hardship_means_no_grant() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks)
    log.revoked("S1", "det-S1-2026-autumn")
    st = status(log, "S1")
    assert st["hardship"]["status"] == "revoked"
    assert withheld(st) == AUTUMN_MONTHS


def test_hardship_effective_next_semester_is_not_in_force_yet() -> None:
    log = Log()
    log.registered("S1")
    log.enrolled("S1")
    log.hardship("S1", semester="2027-spring")
    log.pass_checks("S1", log.routine_checks())
    assert status(log, "S1")["hardship"]["status"] == "none"


@pytest.mark.parametrize(("level", "amount"), [("especially_difficult", 250), ("difficult", 167)])
def test_grant_amount_follows_the_hardship_level(level: str, amount: int) -> None:
    log = Log()
    log.ordinary("S1", level=level)
    log.pass_checks("S1", log.routine_checks())
    st = status(log, "S1")
    assert {g["amount_yuan"] for g in st["grant"]} == {amount}
    assert st["grant_total_yuan"] == 5 * amount


def test_policy_change_between_semesters_changes_amounts_only_after_its_effective_date() -> None:
    data = policy_data()
    newer = copy.deepcopy(data["versions"][0])
    newer.update(version="2027.1", effective_from=date(2027, 3, 1))
    newer["national_grant"]["yuan_per_month"] = {"especially_difficult": 300, "difficult": 200}
    data["versions"].append(newer)
    book = book_from(data)
    log = Log()
    log.ordinary("S1")
    log.pass_checks("S1", log.routine_checks())
    log.pass_checks("S1", log.routine_checks("2027-spring"), semester="2027-spring")
    statuses = replay(log.events, book)
    autumn, spring = statuses[("S1", "2026-autumn")], statuses[("S1", "2027-spring")]
    assert {(g["month"], g["amount_yuan"], g["policy_version"]) for g in autumn["grant"]} == {
        (m, 167, "2025.1") for m in AUTUMN_MONTHS}
    assert {g["amount_yuan"] for g in spring["grant"]} == {200}
    assert spring["policy_version"] == "2027.1"


# --------------------------------------------------------------------------- roster


def test_roster_not_imported_is_not_applied() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks)
    assert status(log, "S1")["roster"]["status"] == "not_imported"
    log.roster("2026-autumn", ["S9"], parts=2)
    # A two-part import with both parts is complete; drop one part to make it partial.
    log.events = [
        e for e in log.events if not (e.type == "NationalRosterImported" and e.payload["part"] == 2)
    ]
    assert status(log, "S1")["roster"]["status"] == "not_imported"


def test_roster_student_in_system_but_not_on_national_list_gets_no_aid() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks)
    log.roster("2026-autumn", ["S2"])
    st = status(log, "S1")
    assert st["roster"]["status"] == "system_only"
    assert withheld(st) == AUTUMN_MONTHS
    assert {g["rules"][0]["rule"] for g in st["grant"]} == {"roster_mismatch"}
    assert st["tuition_waiver"]["decision"] == "denied"


def test_roster_student_on_national_list_but_not_in_system_gets_no_aid() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks)
    log.roster("2026-autumn", ["S1", "S2"])
    statuses = replay(log.events)
    assert statuses[("S1", "2026-autumn")]["roster"]["status"] == "matched"
    assert withheld(statuses[("S1", "2026-autumn")]) == []
    other = statuses[("S2", "2026-autumn")]
    assert other["roster"]["status"] == "national_only"
    assert other["participation"]["status"] == "not_registered"
    assert withheld(other) == AUTUMN_MONTHS and other["tuition_waiver"]["decision"] == "denied"


def test_roster_listing_another_id_number_for_the_student_is_a_mismatch() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks)
    log.roster("2026-autumn", ["S1"], hashes={"S1": "0" * 64})
    assert status(log, "S1")["roster"]["status"] == "id_mismatch"


def test_latest_complete_roster_import_wins() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks)
    log.roster("2026-autumn", ["S2"], when="2027-01-20")
    log.roster("2026-autumn", ["S1"], when="2027-01-25", parts=2)
    assert status(log, "S1")["roster"]["status"] == "matched"


# --------------------------------------------------------------------------- delivery


def _rich_history() -> Log:
    log = Log()
    for sid in ("S1", "S2", "S3"):
        log.ordinary(sid, level="especially_difficult" if sid == "S2" else "difficult")
    checks = log.routine_checks()
    log.pass_checks("S1", checks)
    log.pass_checks("S2", checks, except_months=["2026-11"])
    log.absent("S3", checks["2026-10"], "leave", at(AUTUMN_2026["2026-10"], 11))
    log.pass_checks("S3", checks, except_months=["2026-10"])
    log.check("T-1", "2026-12", date(2026, 12, 15), kind="targeted", students=["S1"])
    log.published("2026-11", "2026-12-01")
    log.appeal("S2", "2026-11", "2026-12-02", decision="approved")
    log.roster("2026-autumn", ["S1", "S2", "S4"], parts=2)
    return log


def test_duplicated_and_out_of_order_delivery_gives_identical_results() -> None:
    log = _rich_history()
    expected = replay(log.events)
    rng = random.Random(7)
    for _ in range(5):
        noisy = log.events + rng.sample(log.events, len(log.events) // 2)
        rng.shuffle(noisy)
        assert replay(noisy) == expected
    assert expected[("S2", "2026-autumn")]["months"][1]["status"] == "passed_on_appeal"


def test_every_event_id_a_decision_lists_is_in_the_log() -> None:
    log = _rich_history()
    known = {str(e.event_id) for e in log.events}
    for st in replay(log.events).values():
        for g in st["grant"]:
            assert set(g["event_ids"]) <= known
            assert g["decision"] != "withheld" or g["event_ids"]
        for m in st["months"]:
            assert set(m["event_ids"]) <= known
        assert set(st["tuition_waiver"]["event_ids"]) <= known


def test_semesters_before_registration_are_not_reported() -> None:
    log = Log()
    log.check("R-old", "2026-05", SPRING_2027["2027-05"].replace(year=2026), semester="2026-spring")
    log.ordinary("S1")
    assert set(replay(log.events)) == {("S1", "2026-autumn")}


def test_student_not_proposed_for_aid_has_no_status_unless_listed() -> None:
    log = Log()
    log.registered("S1", proposed=False)
    log.routine_checks()
    assert replay(log.events) == {}
    log.roster("2026-autumn", ["S1"])
    st = replay(log.events)[("S1", "2026-autumn")]
    assert st["roster"]["status"] == "national_only"
    assert st["participation"]["status"] == "not_proposed_for_aid"


# --------------------------------------------------------------------------- audit decisions (issue 9)


def test_forced_pass_with_fewer_than_three_attempts_is_not_counted() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-12"])
    log.forced("S1", checks["2026-12"], AUTUMN_2026["2026-12"], attempts=2)
    st = status(log, "S1")
    m = month(st, "2026-12")
    assert (m["status"], m["outcome"]) == ("failed", "failed")
    assert m["checks"][0]["reason"] == "no_capture"
    assert withheld(st) == ["2026-12", "2027-01"]


def test_capture_in_time_whose_verdict_is_late_is_pending_until_the_verdict() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-11"])
    day = AUTUMN_2026["2026-11"]
    log.submitted("S1", checks["2026-11"], at(day, 14, 50), "cap-late")
    m = month(status(log, "S1"), "2026-11")
    assert (m["status"], m["outcome"]) == ("pending", "pending")
    assert m["checks"][0]["reason"] == "verdict_pending"
    assert grant(status(log, "S1"))["2026-11"] == "pending"
    verified = copy.deepcopy(log)
    verified.passed("S1", checks["2026-11"], day, hour=18, captured_at=at(day, 14, 50), capture_id="cap-late")
    assert month(status(verified, "S1"), "2026-11")["outcome"] == "passed"
    log.rejected("S1", checks["2026-11"], "cap-late", when=at(day, 18), captured_at=at(day, 14, 50))
    m = month(status(log, "S1"), "2026-11")
    assert (m["outcome"], m["checks"][0]["reason"]) == ("failed", "no_capture")


def test_capture_submitted_outside_the_window_is_not_pending() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-11"])
    log.submitted("S1", checks["2026-11"], at(AUTUMN_2026["2026-11"], 16), "cap-after")
    assert month(status(log, "S1"), "2026-11")["outcome"] == "failed"


def test_verdict_captured_at_decides_the_window_not_its_occurred_at() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks, except_months=["2026-11", "2026-12"])
    nov, dec = AUTUMN_2026["2026-11"], AUTUMN_2026["2026-12"]
    log.passed("S1", checks["2026-11"], nov, hour=20, captured_at=at(nov, 14, 55))  # taken in time
    log.passed("S1", checks["2026-12"], dec, hour=14, captured_at=at(dec, 16))  # taken after closing
    st = status(log, "S1")
    assert month(st, "2026-11")["outcome"] == "passed"
    assert month(st, "2026-12")["outcome"] == "failed"


def test_facematch_verdicts_copy_the_submission_captured_at() -> None:
    from services.facematch.engine import Outcome
    from services.facematch.reasons import Code
    from services.facematch.results import rejected_without_matching, result_event

    capture = {"capture_id": "c1", "student_id": "S1", "school_id": "SC1", "purpose": "spot_check",
               "channel": "app", "check_id": "K1", "captured_at": "2026-11-12T14:50:00+08:00"}
    accepted = Outcome(accepted=True, reasons=[], distance=0.3, threshold=0.6, quality={}, liveness={},
                       embedding=None)
    refused = Outcome(accepted=False, reasons=["NO_MATCH"], distance=0.9, threshold=0.6, quality={},
                      liveness={}, embedding=None)
    for event in (result_event(capture, accepted), result_event(capture, refused),
                  rejected_without_matching(capture, Code.NOT_ENROLLED, "m")):
        assert event.captured_at == "2026-11-12T14:50:00+08:00"


def test_leave_does_not_excuse_a_targeted_check() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks)
    day = date(2026, 11, 20)
    log.check("T-1", "2026-11", day, kind="targeted", students=["S1"])
    log.absent("S1", "T-1", "leave", at(day, 10, 30))
    st = status(log, "S1")
    m = month(st, "2026-11")
    assert (m["status"], m["outcome"]) == ("replaced_by_targeted", "failed")
    assert m["checks"][-1]["reason"] == "leave_in_targeted_check"
    assert withheld(st) == ["2026-11"]


def test_hardship_change_effective_from_a_month_applies_from_that_month() -> None:
    log, checks = ordinary_with_checks()  # difficult (167) from 2026-autumn
    log.pass_checks("S1", checks)
    log.hardship("S1", level="especially_difficult", determination="det-2", when="2026-10-25",
                 effective_month="2026-11")
    st = status(log, "S1")
    amounts = {g["month"]: g["amount_yuan"] for g in st["grant"]}
    assert amounts == {"2026-09": 167, "2026-10": 167, "2026-11": 250, "2026-12": 250, "2027-01": 250}
    assert st["hardship"]["determination_id"] == "det-2"  # the one in force at the semester's end
    assert st["grant_total_yuan"] == 2 * 167 + 3 * 250


def test_hardship_revoked_from_a_month_withholds_from_that_month() -> None:
    log, checks = ordinary_with_checks()
    log.pass_checks("S1", checks)
    log.revoked("S1", "det-S1-2026-autumn", effective_month="2026-12")
    st = status(log, "S1")
    assert withheld(st) == ["2026-12", "2027-01"]
    assert grant(st)["2026-11"] == "granted"
