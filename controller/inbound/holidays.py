"""Holidays read from iCalendar files, and the day test shared by all holiday sources.

An iCalendar event becomes a ``HolidayEvent``: the first day, how many days it covers and, for
yearly holidays written once with an RRULE, the recurrence text (expanded lazily by dateutil, so
no expansion window has to be guessed at load time). Parsing is pure: bytes in, events out; the
config layer reads the file.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache

from dateutil.rrule import rrule, rrulestr
from icalendar import Calendar, Component
from pydantic import BaseModel, ConfigDict, Field


class HolidayEvent(BaseModel):
    """One imported event: ``days`` whole days from ``start``, maybe recurring."""

    # Not a controller.section.Section: an event is read from a calendar file, not written as
    # config, and iCalendar text may hold line breaks and tabs (SUMMARY:Bank\nholiday); the
    # summary only labels the event and is never rendered into Asterisk's configuration.
    model_config = ConfigDict(extra="forbid", frozen=True)

    summary: str = ""
    start: date
    days: int = Field(default=1, ge=1)
    rrule: str | None = None
    exdates: tuple[date, ...] = ()

    def covers(self, day: date) -> bool:
        """Whether ``day`` falls on this holiday (any occurrence of it)."""
        first_possible = day - timedelta(days=self.days - 1)
        if self.rrule is None:
            return first_possible <= self.start <= day
        rule = _compiled_rule(self.rrule, self.start)
        occurrences = rule.between(
            datetime.combine(first_possible, time()), datetime.combine(day, time()), inc=True
        )
        return any(occurrence.date() not in self.exdates for occurrence in occurrences)


@lru_cache(maxsize=512)
def _compiled_rule(text: str, start: date) -> rrule:
    # RRULE UNTIL values may carry a UTC "Z"; comparing them with naive dates needs naive UNTIL
    return rrulestr(text, dtstart=datetime.combine(start, time()), ignoretz=True, cache=True)


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def parse_ics(data: bytes) -> tuple[HolidayEvent, ...]:
    """Read every VEVENT of an iCalendar file as a holiday; raise ValueError naming the problem."""
    try:
        calendar = Calendar.from_ical(data)
    except Exception as error:  # icalendar raises several types for malformed input
        raise ValueError(f"not an iCalendar file: {error}") from None
    events = []
    for index, event in enumerate(calendar.walk("VEVENT")):
        label = str(event.get("SUMMARY", f"event {index + 1}"))
        start_prop = event.get("DTSTART")
        if start_prop is None:
            raise ValueError(f"'{label}' has no DTSTART")
        start_value = start_prop.dt
        start = _as_date(start_value)
        end_prop, duration_prop = event.get("DTEND"), event.get("DURATION")
        if end_prop is not None:
            end_value = end_prop.dt
        elif duration_prop is not None:
            end_value = start_value + duration_prop.dt
        else:
            end_value = start_value
        if isinstance(end_value, datetime):
            # a timed event touches the day its last instant falls on
            last_instant = max(end_value - timedelta(microseconds=1), start_value)
            days = (_as_date(last_instant) - start).days + 1
        else:
            days = max((end_value - start).days, 1)  # all-day DTEND is exclusive
        rule_prop = event.get("RRULE")
        rule_text = rule_prop.to_ical().decode() if rule_prop is not None else None
        if rule_text is not None:
            try:
                _compiled_rule(rule_text, start)
            except (ValueError, TypeError) as error:
                raise ValueError(f"'{label}' has an unreadable RRULE: {error}") from None
        events.append(
            HolidayEvent(
                summary=label, start=start, days=days, rrule=rule_text, exdates=_exdates(event)
            )
        )
    return tuple(events)


def _exdates(event: Component) -> tuple[date, ...]:
    raw = event.get("EXDATE")
    if raw is None:
        return ()
    lists = raw if isinstance(raw, list) else [raw]
    return tuple(_as_date(item.dt) for exdate in lists for item in exdate.dts)
