"""The rules' numbers as data: a book of policy versions, each in force from a date.

The book is built from ``policy/policy.yml`` (see :func:`policy_book_from_dict`, which validates
it). A replay asks the book for the version in force at each date that matters:

- the semester's structure (months, deadline, check months, withholding table, the
  consecutive-months rule, internship and placement rules): the first day of the semester;
- the leave limit: the day the check opens;
- the appeal window: the day the results were published;
- the grant amount: the first day of the aid month.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from typing import Any

from contracts.workdays import WorkCalendar, WorkCalendarError, calendar_from_dict, load_work_calendar
from services.eligibility.domain.calendar import SEASONS

GRANT_LEVELS = ("especially_difficult", "difficult")


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class SeasonRules:
    aid_months: tuple[int, ...]
    check_months: tuple[int, ...]
    capture_deadline: tuple[int, int]
    withheld_when_failed: Mapping[int, tuple[int, ...]]

    @property
    def first_month(self) -> int:
        return self.aid_months[0]


@dataclass(frozen=True)
class Policy:
    version: str
    effective_from: date
    seasons: Mapping[str, SeasonRules]
    min_consecutive_passed: int
    leave_report_within: timedelta
    internship_filing_from_full_months: int
    internship_filing_window_days: int
    appeal_objection_working_days: int
    appeal_resolve_within_filing_month: bool
    placement_min_grade: int
    capture_grace_seconds: float
    grant_yuan_per_month: Mapping[str, int]
    amounts_are_placeholders: bool


@dataclass(frozen=True)
class PolicyBook:
    versions: tuple[Policy, ...]
    calendar: WorkCalendar

    @cached_property
    def _starts(self) -> list[date]:
        return [p.effective_from for p in self.versions]

    @cached_property
    def memo(self) -> dict[Any, Any]:
        """Things derived from the book alone (the version in force on a day, a semester's
        months): computed once per book, read by the rules for every student."""
        return {}

    def policy_at(self, day: date) -> Policy:
        """The version in force on ``day`` (the latest ``effective_from`` on or before it)."""
        found: Policy | None = self.memo.get(day)
        if found is not None:
            return found
        starts = self._starts
        index = bisect.bisect_right(starts, day) - 1
        if index < 0:
            raise PolicyError(f"no policy in force on {day.isoformat()} (first is {starts[0].isoformat()})")
        found = self.memo[day] = self.versions[index]
        return found


# --------------------------------------------------------------------------- validation


def _need(data: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(data, Mapping) or key not in data:
        raise PolicyError(f"{where}: missing {key!r}")
    return data[key]


def _int(value: Any, where: str, low: int = 0, high: int = 10**9) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PolicyError(f"{where}: expected an integer in [{low}, {high}], got {value!r}")
    return int(value)


def _date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise PolicyError(f"{where}: expected a date YYYY-MM-DD, got {value!r}") from exc


def _months(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise PolicyError(f"{where}: expected a non-empty list of months")
    months = tuple(_int(m, where, 1, 12) for m in value)
    if len(set(months)) != len(months):
        raise PolicyError(f"{where}: a month is listed twice")
    return months


def _season(data: Any, where: str) -> SeasonRules:
    aid = _months(_need(data, "aid_months", where), f"{where}.aid_months")
    checks = _months(_need(data, "check_months", where), f"{where}.check_months")
    order = {m: i for i, m in enumerate(aid)}
    if any(m not in order for m in checks):
        raise PolicyError(f"{where}.check_months: every check month must be an aid month")
    if [order[m] for m in checks] != sorted(order[m] for m in checks):
        raise PolicyError(f"{where}.check_months: must be in semester order")
    deadline = _need(data, "capture_deadline", where)
    dl = (_int(_need(deadline, "month", where), f"{where}.capture_deadline.month", 1, 12),
          _int(_need(deadline, "day", where), f"{where}.capture_deadline.day", 1, 31))
    if dl[0] not in order:
        raise PolicyError(f"{where}.capture_deadline: must fall in an aid month")
    table_raw = _need(data, "grant_withheld_when_failed", where)
    if not isinstance(table_raw, Mapping):
        raise PolicyError(f"{where}.grant_withheld_when_failed: expected a mapping")
    table: dict[int, tuple[int, ...]] = {}
    for key, value in table_raw.items():
        month = _int(int(key) if isinstance(key, str) and key.isdigit() else key,
                     f"{where}.grant_withheld_when_failed", 1, 12)
        if month not in checks:
            raise PolicyError(f"{where}.grant_withheld_when_failed: {month} is not a check month")
        withheld = _months(value, f"{where}.grant_withheld_when_failed.{month}")
        if any(m not in order for m in withheld):
            raise PolicyError(f"{where}.grant_withheld_when_failed.{month}: not an aid month")
        table[month] = withheld
    if set(table) != set(checks):
        raise PolicyError(f"{where}.grant_withheld_when_failed: needs one row per check month")
    return SeasonRules(aid_months=aid, check_months=checks, capture_deadline=dl, withheld_when_failed=table)


def _version(data: Any, where: str) -> Policy:
    semesters = _need(data, "semesters", where)
    seasons = {s: _season(_need(semesters, s, f"{where}.semesters"), f"{where}.semesters.{s}")
               for s in SEASONS}
    grant = _need(_need(data, "national_grant", where), "yuan_per_month", f"{where}.national_grant")
    if not isinstance(grant, Mapping) or set(grant) != set(GRANT_LEVELS):
        raise PolicyError(f"{where}.national_grant.yuan_per_month: needs exactly {list(GRANT_LEVELS)}")
    waiver = _need(data, "tuition_waiver", where)
    leave = _need(data, "leave", where)
    internship = _need(data, "internship", where)
    appeal = _need(data, "appeal", where)
    placement = _need(data, "placement", where)
    capture = _need(data, "capture", where)
    resolve = _need(appeal, "resolve_within_filing_month", f"{where}.appeal")
    placeholders = data.get("amounts_are_placeholders", False)
    if not isinstance(resolve, bool) or not isinstance(placeholders, bool):
        raise PolicyError(f"{where}: resolve_within_filing_month and amounts_are_placeholders are booleans")
    return Policy(
        version=str(_need(data, "version", where)),
        effective_from=_date(_need(data, "effective_from", where), f"{where}.effective_from"),
        seasons=seasons,
        min_consecutive_passed=_int(_need(waiver, "min_consecutive_passed_check_months", where),
                                    f"{where}.tuition_waiver", 1, 12),
        leave_report_within=timedelta(hours=_int(_need(leave, "report_within_hours", where),
                                                 f"{where}.leave", 0, 24)),
        internship_filing_from_full_months=_int(_need(internship, "filing_required_from_full_months", where),
                                                f"{where}.internship", 1, 12),
        internship_filing_window_days=_int(_need(internship, "filing_window_days_before_start", where),
                                           f"{where}.internship", 0, 365),
        appeal_objection_working_days=_int(_need(appeal, "objection_working_days", where),
                                           f"{where}.appeal", 0, 60),
        appeal_resolve_within_filing_month=resolve,
        placement_min_grade=_int(_need(placement, "min_grade", where), f"{where}.placement", 1, 9),
        capture_grace_seconds=float(_int(_need(capture, "verify_grace_seconds", where),
                                         f"{where}.capture", 0, 3600)),
        grant_yuan_per_month={k: _int(v, f"{where}.national_grant.{k}") for k, v in grant.items()},
        amounts_are_placeholders=placeholders,
    )


def _work_calendar(data: Any) -> WorkCalendar:
    """The working-day calendar: the one of ``contracts/data/working-calendar.yml`` (shared with
    the appeals service), unless the policy data carries its own ``working_calendar`` (tests)."""
    try:
        return load_work_calendar() if data is None else calendar_from_dict(data)
    except WorkCalendarError as exc:
        raise PolicyError(str(exc)) from exc


def policy_book_from_dict(data: Any) -> PolicyBook:
    """Validate the parsed policy file; raise :class:`PolicyError` naming the faulty entry."""
    if not isinstance(data, Mapping) or data.get("format") != "eligibility-policy/1":
        raise PolicyError("policy: expected format: eligibility-policy/1")
    raw = _need(data, "versions", "policy")
    if not isinstance(raw, list) or not raw:
        raise PolicyError("policy.versions: expected a non-empty list")
    versions = tuple(sorted((_version(v, f"versions[{i}]") for i, v in enumerate(raw)),
                            key=lambda p: p.effective_from))
    starts = [p.effective_from for p in versions]
    if len(set(starts)) != len(starts):
        raise PolicyError("policy.versions: two versions share an effective_from date")
    names = [p.version for p in versions]
    if len(set(names)) != len(names):
        raise PolicyError("policy.versions: two versions share a version name")
    return PolicyBook(versions=versions, calendar=_work_calendar(data.get("working_calendar")))
