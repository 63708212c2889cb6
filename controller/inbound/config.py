"""Inbound routing configuration: numbers (DIDs), schedules, queues and their overflow rules.

A number maps to a route (a queue, optionally behind a schedule). Schedules hold a timezone,
weekly opening hours, holidays (dates, ranges, iCalendar files) and special opening days, plus
where calls go when closed. Queues hold what Asterisk's app_queue needs (strategy, timeouts,
announcements) and the overflow rules the controller itself evaluates.

Everything that can be checked at load time is: timezones, inverted or overlapping hours,
unreadable holiday files, destinations naming undefined queues, overflow loops. Cross-reference
errors are raised as a ``ValidationError`` carrying the offending key's own location, so
``load_config`` prints e.g. ``inbound.queues.sales.overflow[1].destination: queue 'salez' is not
defined`` instead of blaming the whole section.

Holiday files are resolved against the ``config_dir`` entry of the pydantic validation context
(the directory of the TOML file); without one they are resolved against the working directory.
"""

from __future__ import annotations

from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import phonenumbers
from pydantic import (
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from controller.callbacks.config import CallbackConfig
from controller.dispositions import DispositionKey, DispositionName, check_distinct
from controller.inbound.destinations import (
    AnyDestination,
    Destination,
    QueueDestination,
    tagged_union,
)
from controller.inbound.holidays import HolidayEvent, parse_ics
from controller.pjsip import agent_interface
from controller.section import Section
from controller.zones import unknown_zone, zone_named

CONFIG_DIR_CONTEXT_KEY = "config_dir"
MINUTES_PER_DAY = 24 * 60

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")]
# The number an agent's phone registers as and is dialled at: never starting with 9 (the
# outside-line prefix of ``from-agents``) or 0; the one definition queues, accounts and
# campaigns check agent ids by.
AGENT_ID_PATTERN = r"^[1-8][0-9]{1,9}$"
AgentId = Annotated[str, Field(pattern=AGENT_ID_PATTERN)]
Did = Annotated[str, Field(pattern=r"^\+?[0-9]+$")]
Strategy = Literal[
    "leastrecent", "ringall", "fewestcalls", "random", "rrmemory", "rrordered", "linear", "wrandom"
]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# ---- schedules -----------------------------------------------------------------------------


def _minutes(text: str) -> int:
    hours, sep, minutes = text.partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"'{text}' is not a time of day (HH:MM)")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > MINUTES_PER_DAY:
        raise ValueError(f"'{text}' is not a time of day (00:00 to 24:00)")
    return value


def _format_minutes(value: int) -> str:
    return f"{value // 60:02d}:{value % 60:02d}"


class TimeRange(Section):
    """Open from ``start`` (inclusive) to ``end`` (exclusive), minutes after local midnight."""

    start: int = Field(ge=0, lt=MINUTES_PER_DAY)
    end: int = Field(gt=0, le=MINUTES_PER_DAY)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        start, sep, end = value.partition("-")
        if not sep:
            raise ValueError(f"'{value}' is not a range of hours (like 09:00-17:30)")
        return {"start": _minutes(start.strip()), "end": _minutes(end.strip())}

    @model_validator(mode="after")
    def _not_inverted(self) -> TimeRange:
        if self.end <= self.start:
            raise ValueError(f"{self} ends before it starts (use 24:00 for midnight)")
        return self

    def __str__(self) -> str:
        return f"{_format_minutes(self.start)}-{_format_minutes(self.end)}"


def _no_overlap(ranges: tuple[TimeRange, ...]) -> tuple[TimeRange, ...]:
    ordered = sorted(enumerate(ranges), key=lambda item: item[1].start)
    for (index_a, a), (index_b, b) in pairwise(ordered):
        if b.start < a.end:
            raise ValueError(f"[{index_a}] {a} and [{index_b}] {b} overlap")
    return tuple(sorted(ranges, key=lambda item: item.start))


class WeeklyHours(Section):
    """Opening ranges per weekday (local time); a missing day is closed."""

    mon: tuple[TimeRange, ...] = ()
    tue: tuple[TimeRange, ...] = ()
    wed: tuple[TimeRange, ...] = ()
    thu: tuple[TimeRange, ...] = ()
    fri: tuple[TimeRange, ...] = ()
    sat: tuple[TimeRange, ...] = ()
    sun: tuple[TimeRange, ...] = ()

    check_weekdays = field_validator(*WEEKDAYS)(_no_overlap)

    def of_weekday(self, weekday: int) -> tuple[TimeRange, ...]:
        """Ranges of ``date.weekday()`` (0 = Monday)."""
        ranges: tuple[TimeRange, ...] = getattr(self, WEEKDAYS[weekday])
        return ranges


class HolidayRange(Section):
    """Closed from ``start`` to ``end``, both days included; a bare date is a one-day range."""

    start: date
    end: date

    @model_validator(mode="before")
    @classmethod
    def _from_date(cls, value: Any) -> Any:
        if isinstance(value, date | str):
            return {"start": value, "end": value}
        return value

    @model_validator(mode="after")
    def _not_inverted(self) -> HolidayRange:
        if self.end < self.start:
            raise ValueError(f"holiday ends ({self.end}) before it starts ({self.start})")
        return self

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


class HolidayFile(Section):
    """An iCalendar file of holidays, parsed when the config is validated."""

    path: str
    events: tuple[HolidayEvent, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _read(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        base = Path((info.context or {}).get(CONFIG_DIR_CONTEXT_KEY) or ".")
        file = base / value
        try:
            data = file.read_bytes()
        except OSError as error:
            raise ValueError(f"cannot read holiday file '{value}': {error.strerror}") from None
        try:
            events = parse_ics(data)
        except ValueError as error:
            raise ValueError(f"holiday file '{value}': {error}") from None
        return {"path": value, "events": events}


class SpecialDay(Section):
    """A date with its own opening hours; beats holidays and the weekly hours."""

    date: date
    hours: tuple[TimeRange, ...] = Field(min_length=1)

    check_hours = field_validator("hours")(_no_overlap)


class Schedule(Section):
    timezone: str
    hours: WeeklyHours = WeeklyHours()
    holidays: tuple[HolidayRange, ...] = ()
    holiday_files: tuple[HolidayFile, ...] = ()
    special_days: tuple[SpecialDay, ...] = ()
    after_hours: Destination

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if zone_named(value) is None:
            raise ValueError(f"{unknown_zone(value)} (use an IANA name)")
        return value

    @field_validator("special_days")
    @classmethod
    def _one_entry_per_date(cls, value: tuple[SpecialDay, ...]) -> tuple[SpecialDay, ...]:
        seen: dict[date, int] = {}
        for index, day in enumerate(value):
            if day.date in seen:
                raise ValueError(f"[{index}] repeats the date {day.date} of [{seen[day.date]}]")
            seen[day.date] = index
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


# ---- queues and overflow -------------------------------------------------------------------


class Member(Section):
    """An agent allowed to serve the queue; lower penalty is offered calls first."""

    agent: AgentId
    penalty: int = Field(default=0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_id(cls, value: Any) -> Any:
        return {"agent": value} if isinstance(value, str | int) else value

    @property
    def interface(self) -> str:
        return agent_interface(self.agent)


class _OverflowRule(Section):
    name: Name | None = Field(default=None, description="stable id for logs; default overflow[i]")
    destination: Destination


class MaxWaitRule(_OverflowRule):
    """Fires once the caller has waited ``seconds`` in this queue."""

    kind: Literal["max_wait"]
    seconds: float = Field(gt=0)


class MaxCallersRule(_OverflowRule):
    """Fires when the caller's position is beyond ``callers`` (the queue holds at most that)."""

    kind: Literal["max_callers"]
    callers: int = Field(ge=1)


class NoAgentsRule(_OverflowRule):
    """Fires when no agent is logged in, or (with ``seconds``) none was available that long."""

    kind: Literal["no_agents"]
    seconds: float | None = Field(default=None, ge=0)


class EstimatedWaitRule(_OverflowRule):
    """Fires when the controller's estimate of the remaining wait is above ``seconds``."""

    kind: Literal["estimated_wait_above"]
    seconds: float = Field(gt=0)


OverflowRule = Annotated[
    MaxWaitRule | MaxCallersRule | NoAgentsRule | EstimatedWaitRule,
    BeforeValidator(
        tagged_union(
            "kind",
            {
                "max_wait": MaxWaitRule,
                "max_callers": MaxCallersRule,
                "no_agents": NoAgentsRule,
                "estimated_wait_above": EstimatedWaitRule,
            },
        )
    ),
]


def _name_alone(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class QueueDisposition(Section):
    """What a queue call came to (``1 = "resolved"``), and with ``dnc`` the caller asked not
    to be called: the number goes on the global do-not-call list, which every campaign
    honours (``9 = { name = "do-not-call", dnc = true }``)."""

    name: DispositionName
    dnc: bool = False


class QueueConfig(Section):
    strategy: Strategy = "leastrecent"
    members: tuple[Member, ...] = ()
    ring_timeout: int = Field(default=15, ge=1, description="seconds one agent rings")
    retry: int = Field(default=5, ge=0, description="pause before ringing agents again")
    wrapup: int = Field(default=0, ge=0, description="seconds after a call before the next one")
    service_level: int = Field(default=20, ge=0, description="answer target in seconds")
    service_level_target: float = Field(
        default=0.8, gt=0, le=1, description="share of calls to answer within service_level"
    )
    short_abandon: int = Field(
        default=5, ge=0, description="abandons within this many seconds do not count against SL"
    )
    announce_position: bool = False
    announce_holdtime: bool = False
    announce_frequency: int = Field(default=30, ge=1, description="seconds between announcements")
    hold_audio: Literal["music", "ringing"] = "music"
    music_class: Name = "default"
    vip_callers: tuple[str, ...] = ()
    vip_priority: int = Field(default=10, ge=1)
    default_handle_time: float = Field(
        default=180.0, gt=0, description="seconds assumed per call until handle times are known"
    )
    overflow: tuple[OverflowRule, ...] = ()
    fallback_timeout: int = Field(
        default=300, ge=1,
        description="seconds a caller waits before the dialplan's static overflow (also used "
        "while the controller runs, so a controller crash never leaves callers waiting forever)",
    )
    fallback_destination: Destination | None = Field(
        default=None, description="static overflow; default: apologise and hang up"
    )
    callback: CallbackConfig | None = Field(
        default=None, description="offer waiting callers a callback that keeps their place"
    )
    dispositions: dict[
        DispositionKey, Annotated[QueueDisposition, BeforeValidator(_name_alone)]
    ] = Field(
        default_factory=dict,
        description="key -> what a call came to, keyed by its agent after it (*48 + key)",
    )

    @field_validator("dispositions")
    @classmethod
    def _distinct_dispositions(
        cls, value: dict[str, QueueDisposition]
    ) -> dict[str, QueueDisposition]:
        check_distinct(disposition.name for disposition in value.values())
        return value

    @field_validator("members")
    @classmethod
    def _unique_members(cls, value: tuple[Member, ...]) -> tuple[Member, ...]:
        seen: dict[str, int] = {}
        for index, member in enumerate(value):
            if member.agent in seen:
                first = seen[member.agent]
                raise ValueError(f"[{index}] repeats agent '{member.agent}' of [{first}]")
            seen[member.agent] = index
        return value

    def rule_id(self, index: int) -> str:
        """The stable id of overflow rule ``index`` (its name, else ``overflow[index]``)."""
        return self.overflow[index].name or f"overflow[{index}]"


# ---- numbers and the section ---------------------------------------------------------------


class NumberRoute(Section):
    """Where calls to one number (DID) go: a queue, behind a schedule unless always open."""

    queue: Name
    schedule: Name | None = None


def _region_is_known(value: str | None) -> str | None:
    if value is not None and value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown region '{value}' (use an ISO 3166 code like GB)")
    return value


class InboundConfig(Section):
    external_trunk: Name = Field(
        default="trunk", description="PJSIP endpoint for external destinations without a trunk"
    )
    default_region: Annotated[str | None, BeforeValidator(_region_is_known)] = Field(
        default=None, description="region for reading national caller ids (VIP matching)"
    )
    schedules: dict[Name, Schedule] = {}
    queues: dict[Name, QueueConfig] = {}
    numbers: dict[Did, NumberRoute] = {}

    def wrapup_seconds(self) -> dict[str, float]:
        """Each queue's wrap-up after a call (its ``wrapuptime`` in the rendered queues.conf)."""
        return {name: float(queue.wrapup) for name, queue in self.queues.items()}

    @model_validator(mode="after")
    def _references_resolve(self) -> InboundConfig:
        problems = self._unknown_references() or self._overflow_loops()
        if problems:
            raise ValidationError.from_exception_data(
                "InboundConfig",
                [
                    InitErrorDetails(
                        type=PydanticCustomError("inbound_reference", message),
                        loc=loc,
                        input=None,
                    )
                    for loc, message in problems
                ],
            )
        return self

    def _destinations(self) -> list[tuple[tuple[str | int, ...], AnyDestination]]:
        found: list[tuple[tuple[str | int, ...], AnyDestination]] = []
        for name, schedule in self.schedules.items():
            found.append((("schedules", name, "after_hours"), schedule.after_hours))
        for name, queue in self.queues.items():
            for index, rule in enumerate(queue.overflow):
                found.append((("queues", name, "overflow", index, "destination"), rule.destination))
            if queue.fallback_destination is not None:
                found.append((("queues", name, "fallback_destination"), queue.fallback_destination))
        return found

    def _unknown_references(self) -> list[tuple[tuple[str | int, ...], str]]:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        by_folded: dict[str, str] = {}
        for name in self.queues:  # app_queue and queues.conf ignore the case of queue names
            if name.lower() == "general":
                problems.append((("queues", name), f"'{name}' is reserved by queues.conf"))
            elif (first := by_folded.setdefault(name.lower(), name)) != name:
                problems.append((("queues", name), f"'{name}' is queue '{first}' to Asterisk,"
                                 " which ignores the case of queue names"))
        for loc, destination in self._destinations():
            if isinstance(destination, QueueDestination) and destination.queue not in self.queues:
                problems.append((loc, f"queue '{destination.queue}' is not defined"))
        for name, queue in self.queues.items():
            callback = queue.callback
            if callback is None:
                continue
            if callback.schedule is not None and callback.schedule not in self.schedules:
                loc = ("queues", name, "callback", "schedule")
                problems.append((loc, f"schedule '{callback.schedule}' is not defined"))
            for index, region in enumerate(callback.regions):
                if region not in phonenumbers.SUPPORTED_REGIONS:
                    loc = ("queues", name, "callback", "regions", index)
                    problems.append((loc, f"unknown region '{region}' (use an ISO 3166 code)"))
            if not (callback.regions or self.default_region):
                loc = ("queues", name, "callback", "regions")
                problems.append((loc, "give the regions callbacks may call (or default_region)"))
        for did, route in self.numbers.items():
            if route.queue not in self.queues:
                message = f"queue '{route.queue}' is not defined"
                problems.append((("numbers", did, "queue"), message))
            if route.schedule is not None and route.schedule not in self.schedules:
                problems.append(
                    (("numbers", did, "schedule"), f"schedule '{route.schedule}' is not defined")
                )
        return problems

    def _overflow_loops(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Report the first edge that closes a cycle of queue-to-queue overflows."""
        done: set[str] = set()

        def visit(queue: str, path: list[str]) -> tuple[tuple[str | int, ...], str] | None:
            for index, rule in enumerate(self.queues[queue].overflow):
                target = rule.destination
                if not isinstance(target, QueueDestination) or target.queue in done:
                    continue
                if target.queue in path:
                    cycle = " -> ".join([*path[path.index(target.queue) :], target.queue])
                    loc = ("queues", queue, "overflow", index, "destination")
                    return loc, f"overflow loop {cycle}"
                found = visit(target.queue, [*path, target.queue])
                if found:
                    return found
            done.add(queue)
            return None

        for name in self.queues:
            found = visit(name, [name])
            if found:
                return [found]
        return []

    def callback_regions(self, queue: str) -> tuple[str, ...]:
        """The regions a callback of ``queue`` may call (its own, else the default region)."""
        callback = self.queues[queue].callback
        own = callback.regions if callback else ()
        return own or ((self.default_region,) if self.default_region else ())

    def queues_of_agent(self, agent_id: str) -> tuple[tuple[str, int], ...]:
        """``(queue, penalty)`` for every queue the agent may serve, in config order."""
        return tuple(
            (name, member.penalty)
            for name, queue in self.queues.items()
            for member in queue.members
            if member.agent == agent_id
        )
