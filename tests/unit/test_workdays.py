"""The one working-day calendar (contracts/workdays.py, data in contracts/data/working-calendar.yml):
holidays and swapped working days, the objection window, missing years refused, and the data
checked day by day against the ``chinese-calendar`` package for every year both hold."""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar
import pytest

from contracts.workdays import (
    WorkCalendarError,
    calendar_from_dict,
    load_work_calendar,
    objection_window_end,
    require_years,
)

CAL = load_work_calendar()


def test_the_file_agrees_with_the_chinese_calendar_package_day_by_day() -> None:
    years = [y for y in range(CAL.covers_from.year, CAL.covers_until.year + 1)
             if y not in CAL.provisional_years]
    checked = 0
    for year in years:
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
        except NotImplementedError:
            continue  # the package does not hold this year
        day = date(year, 1, 1)
        while day.year == year:
            assert CAL.is_working_day(day) == chinese_calendar.is_workday(day), day
            day += timedelta(days=1)
        checked += 1
    assert checked >= 2  # 2025 and 2026 at least


@pytest.mark.parametrize(("published", "end"), [
    (date(2026, 11, 5), date(2026, 11, 12)),   # Thu: Fri, (weekend), Mon..Thu
    (date(2026, 11, 6), date(2026, 11, 13)),   # Fri: the weekend does not count
    (date(2026, 9, 30), date(2026, 10, 13)),   # National Day 10-01..07; Sat 10-10 is a working day
    (date(2026, 2, 12), date(2026, 2, 26)),    # Spring Festival 02-15..23; Sat 02-14 is a working day
    (date(2026, 9, 18), date(2026, 9, 24)),    # Sun 09-20 is a working day (调休)
    (date(2025, 9, 26), date(2025, 10, 10)),   # Sun 09-28 works, 10-01..08 off, Sat 10-11 not reached
])
def test_the_objection_window_ends_on_the_fifth_working_day(published: date, end: date) -> None:
    assert objection_window_end(CAL, published, 5) == end


def test_a_day_outside_the_data_is_an_error_not_a_weekday() -> None:
    with pytest.raises(WorkCalendarError, match="no data for 2028"):
        objection_window_end(CAL, date(2027, 12, 28), 5)
    with pytest.raises(WorkCalendarError, match="no data for 2024"):
        CAL.is_working_day(date(2024, 12, 31))
    require_years(CAL, [2025, 2026, 2027])
    with pytest.raises(WorkCalendarError, match="lacks 2024, 2028"):
        require_years(CAL, [2024, 2026, 2028])


@pytest.mark.parametrize(("years", "message"), [
    ({2026: {"holidays": ["2026-10-01"], "working_weekends": ["2026-10-12"]}}, "Saturday or Sunday"),
    ({2026: {"holidays": ["2027-01-01"]}}, "a date outside 2026"),
    ({2026: {"holidays": []}, 2028: {"holidays": []}}, "consecutive"),
    ({2026: {"holidays": ["2026-10-07/2026-10-01"]}}, "ends before it starts"),
    ({2026: {"holidays": ["2026-10-10"], "working_weekends": ["2026-10-10"]}}, "both a holiday"),
    ({2026: {}}, "missing 'holidays'"),
])
def test_faulty_calendar_data_is_refused_naming_the_entry(years: dict[int, object], message: str) -> None:
    with pytest.raises(WorkCalendarError, match=message):
        calendar_from_dict({"years": years})
