"""The working-day calendar (工作日): Monday to Friday, minus public holidays, plus swapped
working days (调休), as the State Council publishes them each year. ONE implementation, used by
the appeals service (is an objection inside the window?) and by eligibility (the same question
in a replay); services never import each other, so it lives here.

The data is ``contracts/data/working-calendar.yml``, one entry per year: the holidays and the
swapped working weekends of the State Council's notice (国务院办公厅关于XXXX年部分节假日安排的通知,
normally published in November of the year before). How a year is added: docs/appeals.md. A
unit test compares the file with the ``chinese-calendar`` package (PyPI) for every year both
hold. A day outside the years in the file is never counted as a plain weekday: every question
about it raises :class:`WorkCalendarError`, and each service refuses to start while a year it
needs is missing (:func:`require_years`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CALENDAR_FILE = Path(__file__).parent / "data" / "working-calendar.yml"


class WorkCalendarError(ValueError):
    """The calendar data is faulty, or a question needs a year it does not hold."""


@dataclass(frozen=True)
class WorkCalendar:
    """Chinese working days: Monday to Friday, minus public holidays, plus swapped working days."""

    holidays: frozenset[date]
    working_weekends: frozenset[date]
    covers_from: date
    covers_until: date
    provisional_years: frozenset[int] = frozenset()

    def covers(self, day: date) -> bool:
        return self.covers_from <= day <= self.covers_until

    def _need(self, day: date) -> None:
        if not self.covers(day):
            raise WorkCalendarError(
                f"the working-day calendar has no data for {day.year} (it holds"
                f" {self.covers_from.year}..{self.covers_until.year}); add the year to {CALENDAR_FILE.name}")

    def is_working_day(self, day: date) -> bool:
        self._need(day)
        if day in self.working_weekends:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def add_working_days(self, day: date, count: int) -> date:
        """The ``count``-th working day after ``day`` (``day`` itself is not counted)."""
        current = day
        left = count
        while left > 0:
            current += timedelta(days=1)
            if self.is_working_day(current):
                left -= 1
        return current

    def missing_years(self, years: Iterable[int]) -> list[int]:
        return sorted({y for y in years if not self.covers_from.year <= y <= self.covers_until.year})


def objection_window_end(calendar: WorkCalendar, published_on: date, working_days: int) -> date:
    """The last day on which an objection to results published on ``published_on`` is in time:
    the ``working_days``-th working day after the publication (the seed: 结果生成的5个工作日内)."""
    return calendar.add_working_days(published_on, working_days)


def require_years(calendar: WorkCalendar, years: Iterable[int]) -> None:
    """Raise :class:`WorkCalendarError` naming every year in ``years`` the calendar lacks (the
    services' start-up check)."""
    missing = calendar.missing_years(years)
    if missing:
        raise WorkCalendarError(
            f"the working-day calendar lacks {', '.join(map(str, missing))} (it holds"
            f" {calendar.covers_from.year}..{calendar.covers_until.year}): add the State Council's"
            f" holiday notice of that year to contracts/data/{CALENDAR_FILE.name} (see docs/appeals.md)")


# --------------------------------------------------------------------------- reading the data


def _date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise WorkCalendarError(f"{where}: expected a date YYYY-MM-DD, got {value!r}") from exc


def _dates(value: Any, where: str) -> set[date]:
    """A list of dates or ``"first/last"`` ranges."""
    if not isinstance(value, list):
        raise WorkCalendarError(f"{where}: expected a list of dates")
    out: set[date] = set()
    for item in value:
        if isinstance(item, str) and "/" in item:
            first_s, _, last_s = item.partition("/")
            first, last = _date(first_s, where), _date(last_s, where)
            if last < first:
                raise WorkCalendarError(f"{where}: range {item!r} ends before it starts")
            out.update(first + timedelta(days=i) for i in range((last - first).days + 1))
        else:
            out.add(_date(item, where))
    return out


def calendar_from_dict(data: Any) -> WorkCalendar:
    """Validate ``{"years": {2026: {"holidays": [...], "working_weekends": [...]}, ...}}``; raise
    :class:`WorkCalendarError` naming the faulty entry."""
    years = data.get("years") if isinstance(data, Mapping) else None
    if not isinstance(years, Mapping) or not years:
        raise WorkCalendarError("working_calendar.years: expected a mapping of years")
    holidays: set[date] = set()
    working: set[date] = set()
    provisional: set[int] = set()
    for year, spec in years.items():
        where = f"working_calendar.years.{year}"
        if not isinstance(spec, Mapping) or "holidays" not in spec:
            raise WorkCalendarError(f"{where}: missing 'holidays'")
        hol = _dates(spec["holidays"], f"{where}.holidays")
        work = _dates(spec.get("working_weekends", []), f"{where}.working_weekends")
        if any(d.year != int(year) for d in hol | work):
            raise WorkCalendarError(f"{where}: a date outside {year}")
        if any(d.weekday() < 5 for d in work):
            raise WorkCalendarError(f"{where}.working_weekends: a swapped working day must be"
                                    " a Saturday or Sunday")
        if hol & work:
            raise WorkCalendarError(f"{where}: a day is both a holiday and a working day")
        if spec.get("provisional"):
            provisional.add(int(year))
        holidays |= hol
        working |= work
    first, last = min(int(y) for y in years), max(int(y) for y in years)
    if sorted(int(y) for y in years) != list(range(first, last + 1)):
        raise WorkCalendarError("working_calendar.years: years must be consecutive")
    return WorkCalendar(frozenset(holidays), frozenset(working), date(first, 1, 1), date(last, 12, 31),
                        frozenset(provisional))


def load_work_calendar(path: Path | str | None = None) -> WorkCalendar:
    """The calendar of ``path`` (default: the shipped ``contracts/data/working-calendar.yml``)."""
    if path is None:
        return _shipped()
    return _load(Path(path))


@cache
def _shipped() -> WorkCalendar:
    return _load(CALENDAR_FILE)


def _load(path: Path) -> WorkCalendar:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise WorkCalendarError(f"{path.name}: cannot be read: {exc}") from exc
    try:
        return calendar_from_dict(data)
    except WorkCalendarError as exc:
        raise WorkCalendarError(f"{path.name}: {exc}") from exc
