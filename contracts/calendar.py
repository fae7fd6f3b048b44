"""Semester identifiers and the calendar's fixed points (time zone Asia/Shanghai).

The rules that change with policy (deadlines, check months, amounts) live in the eligibility
policy file; this module only names semesters, as every contract does. It is the ONE place that
says which semester a day belongs to: every service (enrolment, spotcheck, eligibility) imports
:func:`semester_of` from here.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local_date(instant: datetime) -> date:
    return instant.astimezone(SHANGHAI).date()


def semester_of(day: date | datetime) -> str:
    """``2026-autumn`` for Aug 2026 .. Jan 2027, ``2027-spring`` for Feb .. Jul 2027.

    Aid covers Sep .. Jan and Mar .. Jul; February and August, between the aid months, belong
    to the semester that starts next (new capture runs at a semester's start): an enrolment
    made in February 2027 is one of 2027-spring. An instant is read in Asia/Shanghai."""
    d = local_date(day) if isinstance(day, datetime) else day
    if d.month >= 8:
        return f"{d.year}-autumn"
    if d.month == 1:
        return f"{d.year - 1}-autumn"
    return f"{d.year}-spring"


def parse_semester(semester: str) -> tuple[int, str]:
    """``"2026-autumn"`` -> ``(2026, "autumn")``; anything else raises :class:`ValueError`."""
    year, _, season = semester.partition("-") if isinstance(semester, str) else ("", "", "")
    if not (len(year) == 4 and year.isascii() and year.isdigit()) or season not in ("autumn", "spring"):
        raise ValueError(f"not a semester id: {semester!r} (expected e.g. 2026-autumn)")
    return int(year), season


def parse_month(text: str) -> tuple[int, int]:
    """``"2026-11"`` -> ``(2026, 11)``. Anything but ``YYYY-MM`` with a year in 2000..2100 and a
    month in 01..12 raises :class:`ValueError` saying what is expected."""
    year, dash, month = text.partition("-") if isinstance(text, str) else ("", "", "")
    if not (dash and len(year) == 4 and len(month) == 2 and year.isascii() and year.isdigit()
            and month.isascii() and month.isdigit()):
        raise ValueError(f"not a month: {text!r} (expected YYYY-MM, e.g. 2026-11)")
    if not 2000 <= int(year) <= 2100:
        raise ValueError(f"not a month: {text!r} (the year must be in 2000..2100)")
    if not 1 <= int(month) <= 12:
        raise ValueError(f"not a month: {text!r} (the month must be 01..12)")
    return int(year), int(month)
