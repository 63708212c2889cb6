"""Open or closed at an instant: weekly hours, holidays and special days in the schedule's zone.

Precedence: a supervisor's override (``Override``, see ``overrides.py``) beats everything, a
special opening day's hours beat a holiday, a holiday beats the weekly hours.
Everything is decided on the local wall clock of the schedule's IANA zone (zoneinfo), so a
09:00-17:00 day is 09:00-17:00 on both sides of a DST change. On the short spring-forward day
a range starting in the skipped hour opens at the first real instant after it.
Pure: the instant is passed in, nothing is read.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from controller.inbound.config import MINUTES_PER_DAY, Schedule, TimeRange

NEXT_CHANGE_HORIZON_DAYS = 400


class Override(StrEnum):
    """A supervisor's "open now" or "closed now" for a schedule, until it is lifted."""

    OPEN = "open"
    CLOSED = "closed"


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("the instant must be timezone-aware")


def is_holiday(schedule: Schedule, day: date) -> bool:
    """Whether ``day`` (a local date) is a holiday from the list or an imported file."""
    return any(item.covers(day) for item in schedule.holidays) or any(
        event.covers(day) for file in schedule.holiday_files for event in file.events
    )


def hours_of_day(schedule: Schedule, day: date) -> tuple[TimeRange, ...]:
    """The opening ranges that apply on local date ``day`` after all precedence rules."""
    for special in schedule.special_days:
        if special.date == day:
            return special.hours
    if is_holiday(schedule, day):
        return ()
    return schedule.hours.of_weekday(day.weekday())


def is_open(schedule: Schedule, at: datetime, override: Override | None = None) -> bool:
    """Whether calls are taken at instant ``at`` (timezone-aware); an override decides alone."""
    _require_aware(at)
    if override is not None:
        return override is Override.OPEN
    local = at.astimezone(schedule.zone)
    minute = local.hour * 60 + local.minute
    return any(r.start <= minute < r.end for r in hours_of_day(schedule, local.date()))


def _instant(schedule: Schedule, day: date, minute: int) -> datetime:
    if minute == MINUTES_PER_DAY:
        day, minute = day + timedelta(days=1), 0
    wall = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=schedule.zone)
    # a wall time in the spring-forward gap round-trips to the first instant after the gap
    return wall.astimezone(UTC)


def next_change(schedule: Schedule, at: datetime) -> datetime | None:
    """The first instant after ``at`` at which ``is_open`` flips, in UTC.

    ``None`` when nothing changes within ``NEXT_CHANGE_HORIZON_DAYS`` (always open or closed).
    """
    _require_aware(at)
    first_day = at.astimezone(schedule.zone).date() - timedelta(days=1)
    currently_open = is_open(schedule, at)
    for offset in range(NEXT_CHANGE_HORIZON_DAYS):
        day = first_day + timedelta(days=offset)
        for r in hours_of_day(schedule, day):
            for edge in (_instant(schedule, day, r.start), _instant(schedule, day, r.end)):
                if edge > at and is_open(schedule, edge) != currently_open:
                    return edge
    return None
