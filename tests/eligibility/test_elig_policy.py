"""The policy file: validation, versions by effective date, the working-day calendar, months."""

from __future__ import annotations

import copy
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.calendar import parse_month
from contracts.workdays import CALENDAR_FILE, load_work_calendar
from services.eligibility.domain.calendar import (
    add_months,
    first_day,
    last_day,
    month_of_semester,
    semester_key,
    semester_of,
    semester_of_month,
)
from services.eligibility.domain.policy import PolicyError
from services.eligibility.policyfile import load_policy_book
from tests.eligibility.elig_builders import book_from, policy_data


def test_shipped_policy_loads_with_the_domain_numbers() -> None:
    book = load_policy_book()
    policy = book.policy_at(date(2026, 9, 1))
    autumn, spring = policy.seasons["autumn"], policy.seasons["spring"]
    assert autumn.aid_months == (9, 10, 11, 12, 1) and autumn.check_months == (10, 11, 12)
    assert autumn.capture_deadline == (10, 20) and spring.capture_deadline == (4, 20)
    assert dict(autumn.withheld_when_failed) == {10: (9, 10), 11: (11,), 12: (12, 1)}
    assert dict(spring.withheld_when_failed) == {4: (3, 4), 5: (5,), 6: (6, 7)}
    assert policy.min_consecutive_passed == 3
    assert policy.leave_report_within.total_seconds() == 2 * 3600
    assert (policy.internship_filing_from_full_months, policy.internship_filing_window_days) == (3, 15)
    assert policy.appeal_objection_working_days == 5
    assert dict(policy.grant_yuan_per_month) == {"especially_difficult": 250, "difficult": 167}
    assert policy.amounts_are_placeholders
    assert book.calendar.covers(date(2025, 1, 1)) and book.calendar.covers(date(2027, 12, 31))


def test_policy_at_picks_the_version_in_force() -> None:
    data = policy_data()
    newer = copy.deepcopy(data["versions"][0])
    newer.update(version="2027.1", effective_from=date(2027, 3, 1))
    data["versions"].append(newer)
    book = book_from(data)
    assert book.policy_at(date(2027, 2, 28)).version == "2025.1"
    assert book.policy_at(date(2027, 3, 1)).version == "2027.1"
    with pytest.raises(PolicyError, match="no policy in force on 2024-12-31"):
        book.policy_at(date(2024, 12, 31))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda v: v.pop("leave"), "versions\\[0\\]: missing 'leave'"),
        (
            lambda v: v["semesters"]["autumn"].update(check_months=[10, 11, 2]),
            "every check month must be an aid month",
        ),
        (
            lambda v: v["semesters"]["spring"]["grant_withheld_when_failed"].pop(5),
            "needs one row per check month",
        ),
        (
            lambda v: v["semesters"]["autumn"]["grant_withheld_when_failed"].update({10: [8]}),
            "not an aid month",
        ),
        (lambda v: v["national_grant"]["yuan_per_month"].pop("difficult"), "needs exactly"),
        (
            lambda v: v["tuition_waiver"].update(min_consecutive_passed_check_months=0),
            "expected an integer in \\[1, 12\\]",
        ),
        (lambda v: v.update(effective_from="someday"), "expected a date"),
    ],
)
def test_loader_refuses_a_faulty_version_naming_it(mutate: Any, message: str) -> None:
    data = policy_data()
    mutate(data["versions"][0])
    with pytest.raises(PolicyError, match=message):
        book_from(data)


def test_loader_refuses_two_versions_with_one_effective_date() -> None:
    data = policy_data()
    twin = copy.deepcopy(data["versions"][0])
    twin["version"] = "other"
    data["versions"].append(twin)
    with pytest.raises(PolicyError, match="share an effective_from"):
        book_from(data)


def test_loader_refuses_a_swapped_working_day_on_a_weekday() -> None:
    data = policy_data()
    data["working_calendar"] = yaml.safe_load(CALENDAR_FILE.read_text(encoding="utf-8"))
    data["working_calendar"]["years"][2026]["working_weekends"].append(date(2026, 10, 12))
    with pytest.raises(PolicyError, match="must be a Saturday or Sunday"):
        book_from(data)


def test_loader_reports_bad_yaml_with_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "p.yml"
    bad.write_text("format: [unclosed\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="p.yml: not valid YAML"):
        load_policy_book(bad)


def test_working_days_skip_holidays_and_count_swapped_working_days() -> None:
    cal = load_policy_book().calendar
    assert cal == load_work_calendar()  # eligibility counts with the system's one calendar
    assert cal.add_working_days(date(2026, 9, 30), 5) == date(2026, 10, 13)  # National Day, Sat 10-10 works
    assert cal.add_working_days(date(2025, 1, 24), 1) == date(2025, 1, 26)  # Sunday 1-26 is a working day
    assert cal.add_working_days(date(2026, 12, 1), 5) == date(2026, 12, 8)
    assert not cal.is_working_day(date(2026, 2, 16)) and cal.is_working_day(date(2026, 2, 28))


def test_semester_arithmetic() -> None:
    assert semester_of(date(2027, 1, 15)) == "2026-autumn"
    assert semester_of(date(2027, 2, 10)) == "2027-spring"
    assert semester_of(date(2026, 8, 10)) == "2026-autumn"
    assert semester_key("2026-autumn") < semester_key("2027-spring") < semester_key("2027-autumn")
    assert month_of_semester("2026-autumn", 1, 9) == "2027-01"
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)


def test_months_are_read_by_the_contracts_month_parser() -> None:
    assert parse_month("2026-11") == (2026, 11)
    assert (parse_month("2000-01"), parse_month("2100-12")) == ((2000, 1), (2100, 12))
    assert first_day("2027-01") == date(2027, 1, 1) and last_day("2028-02") == date(2028, 2, 29)
    assert semester_of_month("2027-01") == "2026-autumn" and semester_of_month("2027-03") == "2027-spring"


@pytest.mark.parametrize("text, why", [
    ("2026-13", "the month must be 01..12"), ("2026-00", "the month must be 01..12"),
    ("1999-12", "the year must be in 2000..2100"), ("2101-01", "the year must be in 2000..2100"),
    ("2026-1", "expected YYYY-MM"), ("26-11", "expected YYYY-MM"), ("2026/11", "expected YYYY-MM"),
    ("2026-11-01", "expected YYYY-MM"), ("", "expected YYYY-MM"), ("２０２６-11", "expected YYYY-MM"),
    ("2026-+1", "expected YYYY-MM"),
])
def test_anything_but_a_real_month_is_refused_saying_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"not a month: {text!r}") + ".*" + re.escape(why)):
        parse_month(text)
    with pytest.raises(ValueError, match="not a month"):
        first_day(text)
