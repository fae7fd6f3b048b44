"""The working-day calendar as a nameko dependency, checked when a service starts.

``self.calendar`` is :func:`contracts.workdays.load_work_calendar` (the one calendar). At
start-up the data must hold the current year (Asia/Shanghai) and every year in which a school
published month results (MonthResultsPublished in the log): otherwise the service refuses to
start, naming the missing years, instead of silently counting plain weekdays later.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from nameko.extensions import DependencyProvider

from backbone import config
from contracts.calendar import local_date
from contracts.workdays import WorkCalendar, load_work_calendar, require_years

log = logging.getLogger("aid.workdays")


def publication_years(database_url: str) -> set[int]:
    """Years of the ``published_on`` of every MonthResultsPublished in the log."""
    with psycopg.connect(database_url, connect_timeout=5, autocommit=True) as conn:
        rows = conn.execute("SELECT DISTINCT left(payload->>'published_on', 4) FROM events"
                            " WHERE type = 'MonthResultsPublished'").fetchall()
    return {int(r[0]) for r in rows if r[0] and r[0].isdigit()}


def checked_calendar(database_url: str | None = None) -> WorkCalendar:
    """The calendar, after checking that it holds the years in use (raises
    :class:`contracts.workdays.WorkCalendarError` naming the missing ones)."""
    calendar = load_work_calendar()
    years = {local_date(config.now()).year}
    if database_url is not None:
        try:
            years |= publication_years(database_url)
        except psycopg.Error as exc:  # the database is checked by /health; the year of today still is
            log.warning("working-day calendar: publications not read (%s)", type(exc).__name__)
    require_years(calendar, years)
    provisional = sorted(years & calendar.provisional_years)
    if provisional:
        log.warning("working-day calendar: %s provisional (statutory holidays only, no swapped working"
                    " days): add the State Council's notice to contracts/data/working-calendar.yml",
                    ", ".join(map(str, provisional)))
    return calendar


class WorkCalendarProvider(DependencyProvider):  # type: ignore[misc]
    """nameko dependency: ``self.calendar`` is the checked :class:`WorkCalendar`."""

    def setup(self) -> None:
        self.calendar = checked_calendar(config.load().database_url)
        log.info("working-day calendar holds %d..%d", self.calendar.covers_from.year,
                 self.calendar.covers_until.year)

    def get_dependency(self, worker_ctx: Any) -> WorkCalendar:
        return self.calendar
