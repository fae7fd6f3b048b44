"""Semesters, months and working days, in Asia/Shanghai time.

China has kept UTC+8 without daylight saving since 1991, so a fixed offset is exact for every
date this system handles and much cheaper than a zone lookup in the replay loop. Months
(``YYYY-MM``) are read by :func:`contracts.calendar.parse_month`, and the semester of a day is
:func:`contracts.calendar.semester_of`, as everywhere in the system (one calendar).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

from contracts.calendar import parse_month
from contracts.calendar import parse_semester as _parse_semester
from contracts.calendar import semester_of as semester_of
from contracts.workdays import WorkCalendar as WorkCalendar  # the one working-day calendar

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

SEASONS = ("spring", "autumn")


class CalendarError(ValueError):
    pass


@lru_cache(maxsize=1024)
def parse_semester(semester: str) -> tuple[int, str]:
    """``"2026-autumn"`` -> ``(2026, "autumn")`` (:func:`contracts.calendar.parse_semester`, cached)."""
    try:
        return _parse_semester(semester)
    except ValueError as exc:
        raise CalendarError(str(exc)) from exc


@lru_cache(maxsize=1024)
def semester_key(semester: str) -> int:
    """Sortable number: 2026-spring < 2026-autumn < 2027-spring."""
    year, season = parse_semester(semester)
    return year * 2 + (1 if season == "autumn" else 0)


def semester_start(semester: str) -> str:
    """The first month of ``semester`` as :func:`semester_of` draws it: ``YYYY-08`` (autumn),
    ``YYYY-02`` (spring)."""
    year, season = parse_semester(semester)
    return month_str(year, 8 if season == "autumn" else 2)


def semester_of_month(month: str) -> str:
    """The semester whose aid months include ``month`` (e.g. 2027-01 -> 2026-autumn)."""
    return semester_of(first_day(month))


def month_str(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


@lru_cache(maxsize=4096)
def month_of_semester(semester: str, month_number: int, first_month: int) -> str:
    """Calendar month ``month_number`` of ``semester`` (months before ``first_month`` roll to next year)."""
    year, _ = parse_semester(semester)
    return month_str(year + (1 if month_number < first_month else 0), month_number)


@lru_cache(maxsize=4096)
def first_day(month: str) -> date:
    year, mm = parse_month(month)
    return date(year, mm, 1)


@lru_cache(maxsize=4096)
def last_day(month: str) -> date:
    year, mm = parse_month(month)
    nxt = date(year + (mm == 12), mm % 12 + 1, 1)
    return nxt - timedelta(days=1)


def add_months(day: date, months: int) -> date:
    """``day`` plus whole calendar months, clamped to the end of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, mm = divmod(index, 12)
    end = last_day(month_str(year, mm + 1))
    return date(year, mm + 1, min(day.day, end.day))


@lru_cache(maxsize=65536)
def local_date(ts: float) -> date:
    return datetime.fromtimestamp(ts, SHANGHAI).date()


@lru_cache(maxsize=65536)
def local_month(ts: float) -> str:
    d = local_date(ts)
    return month_str(d.year, d.month)


def end_of_local_day(day: date) -> float:
    """The last instant (as epoch seconds) of ``day`` in Shanghai: deadlines "by Oct 20" include Oct 20."""
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).timestamp() + 86400 - 1e-6
