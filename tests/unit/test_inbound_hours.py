"""Opening hours: weekly ranges, holidays, special days, imported calendars, DST."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from controller.inbound.config import HolidayFile, Schedule
from controller.inbound.holidays import parse_ics
from controller.inbound.hours import Override, is_open, next_change

PARIS = ZoneInfo("Europe/Paris")
WEEKDAYS = {day: ["09:00-12:00", "14:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


def office(**changes: Any) -> Schedule:
    return Schedule.model_validate(
        {"timezone": "Europe/Paris", "hours": WEEKDAYS, "after_hours": "voicemail:1", **changes}
    )


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (paris(2025, 3, 3, 8, 59), False),
        (paris(2025, 3, 3, 9, 0), True),  # start is inclusive
        (paris(2025, 3, 3, 11, 59), True),
        (paris(2025, 3, 3, 12, 0), False),  # end is exclusive
        (paris(2025, 3, 3, 13, 0), False),  # lunch
        (paris(2025, 3, 3, 14, 0), True),
        (paris(2025, 3, 8, 10, 0), False),  # Saturday
    ],
)
def test_weekly_ranges_at_their_edges(at: datetime, expected: bool) -> None:
    assert is_open(office(), at) is expected


def test_instant_is_read_in_the_schedule_zone() -> None:
    # 08:30 UTC is 09:30 in Paris in winter
    assert is_open(office(), datetime(2025, 3, 3, 8, 30, tzinfo=UTC))
    assert not is_open(office(), datetime(2025, 3, 3, 7, 30, tzinfo=UTC))


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(office(), datetime(2025, 3, 3, 10, 0))


def test_hours_follow_the_wall_clock_across_dst() -> None:
    # Paris moves to UTC+2 on 2025-03-30: 09:00 local is 08:00 UTC before, 07:00 UTC after
    assert is_open(office(), datetime(2025, 3, 28, 8, 0, tzinfo=UTC))
    assert not is_open(office(), datetime(2025, 3, 28, 7, 30, tzinfo=UTC))
    assert is_open(office(), datetime(2025, 3, 31, 7, 0, tzinfo=UTC))
    assert not is_open(office(), datetime(2025, 3, 31, 6, 59, tzinfo=UTC))


def test_holidays_close_and_special_days_open() -> None:
    schedule = office(
        holidays=["2025-12-25", {"start": "2025-12-29", "end": "2025-12-31"}],
        special_days=[
            {"date": "2025-12-30", "hours": ["10:00-12:00"]},  # inside the holiday range
            {"date": "2025-12-27", "hours": ["10:00-12:00"]},  # a Saturday
        ],
    )
    assert not is_open(schedule, paris(2025, 12, 25, 10, 0))
    assert is_open(schedule, paris(2025, 12, 26, 10, 0))
    assert not is_open(schedule, paris(2025, 12, 29, 10, 0))
    assert not is_open(schedule, paris(2025, 12, 31, 10, 0))
    assert is_open(schedule, paris(2025, 12, 30, 11, 0))
    assert not is_open(schedule, paris(2025, 12, 30, 9, 30))  # special hours replace weekly
    assert is_open(schedule, paris(2025, 12, 27, 10, 0))


ICS = b"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:1
SUMMARY:Christmas
DTSTART;VALUE=DATE:20201225
DTEND;VALUE=DATE:20201227
RRULE:FREQ=YEARLY
EXDATE;VALUE=DATE:20231225
END:VEVENT
BEGIN:VEVENT
UID:2
SUMMARY:Offsite
DTSTART:20250305T130000Z
DTEND:20250306T100000Z
END:VEVENT
END:VCALENDAR
"""


def imported() -> Schedule:
    return office(holiday_files=[HolidayFile(path="h.ics", events=parse_ics(ICS))])


def test_recurring_calendar_holiday_covers_every_year_but_exdates() -> None:
    schedule = imported()
    assert not is_open(schedule, paris(2025, 12, 25, 10, 0))  # Thursday, recurring
    assert not is_open(schedule, paris(2025, 12, 26, 10, 0))  # two-day event
    assert is_open(schedule, paris(2023, 12, 25, 10, 0))  # EXDATE (a Monday)
    assert is_open(schedule, paris(2023, 12, 26, 10, 0))  # the whole occurrence is removed
    assert is_open(schedule, paris(2019, 12, 25, 10, 0))  # before the first occurrence


def test_timed_calendar_event_closes_the_days_it_touches() -> None:
    schedule = imported()
    assert not is_open(schedule, paris(2025, 3, 5, 10, 0))
    assert not is_open(schedule, paris(2025, 3, 6, 10, 0))
    assert is_open(schedule, paris(2025, 3, 7, 10, 0))


def test_next_change_from_open_and_closed() -> None:
    schedule = office()
    assert next_change(schedule, paris(2025, 3, 3, 10, 0)) == paris(2025, 3, 3, 12, 0)
    assert next_change(schedule, paris(2025, 3, 3, 12, 0)) == paris(2025, 3, 3, 14, 0)
    # Friday evening to Monday morning
    assert next_change(schedule, paris(2025, 3, 7, 18, 0)) == paris(2025, 3, 10, 9, 0)


def test_next_change_skips_holidays_and_merges_midnight() -> None:
    all_day = {day: ["00:00-24:00"] for day in ("mon", "tue", "wed")}
    schedule = office(hours=all_day, holidays=["2025-03-04"])
    assert next_change(schedule, paris(2025, 3, 3, 10, 0)) == paris(2025, 3, 4, 0, 0)
    assert next_change(schedule, paris(2025, 3, 4, 10, 0)) == paris(2025, 3, 5, 0, 0)


def test_next_change_none_when_never_open() -> None:
    assert next_change(office(hours={}), paris(2025, 3, 3, 10, 0)) is None


def test_next_change_across_dst_is_the_local_opening() -> None:
    # Friday 28 March 18:00 (UTC+1) to Monday 31 March 09:00 (UTC+2)
    change = next_change(office(), paris(2025, 3, 28, 18, 0))
    assert change == datetime(2025, 3, 31, 7, 0, tzinfo=UTC)


def test_an_override_decides_whatever_the_hours_say() -> None:
    monday_ten, saturday = paris(2025, 3, 3, 10, 0), paris(2025, 3, 8, 10, 0)
    assert not is_open(office(), monday_ten, Override.CLOSED)
    assert is_open(office(), saturday, Override.OPEN)
    assert is_open(office(), monday_ten, None) and not is_open(office(), saturday, None)
