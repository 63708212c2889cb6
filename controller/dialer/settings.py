"""A campaign's settings: one TOML file per campaign, validated before anything is stored.

The file is checked with the same rules as the controller config (unknown keys are errors, every
problem names its key path and the file), then stored as JSON with the campaign so the runner
and the CLI read the very settings that were validated, whether or not the file still exists.
Durations carry their unit in the key name (``ring_timeout_seconds``, ``recall_gap_hours``) so a
TOML reader never has to guess.
"""

from __future__ import annotations

import json
import tomllib
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from controller.config import ConfigError, validation_problems
from controller.dispositions import DispositionKey, DispositionName, check_distinct
from controller.inbound.config import AgentId
from controller.section import Section

# Regulators (FCC 47 CFR 64.1200, Ofcom) require at least 15 s of ringing before giving up.
MIN_RING_TIMEOUT_SECONDS = 15

DialingMode = Literal["preview", "progressive", "predictive"]
PositiveMinutes = Annotated[int, Field(ge=0)]


class AgentGroup(Section):
    """Who takes the answered calls: a queue, or a fixed list of agent ids (exactly one)."""

    queue: str | None = Field(default=None, min_length=1)
    agent_ids: tuple[AgentId, ...] = ()

    @model_validator(mode="after")
    def _exactly_one(self) -> AgentGroup:
        if (self.queue is None) == (not self.agent_ids):
            raise ValueError("set exactly one of agents.queue or agents.agent_ids")
        return self


class CallingHours(Section):
    """Window in the lead's own local time; a lead is dialed only inside [start, end)."""

    start: time = time(9, 0)
    end: time = time(21, 0)

    @model_validator(mode="after")
    def _ordered(self) -> CallingHours:
        if self.start >= self.end:
            raise ValueError("calling_hours.start must be before calling_hours.end")
        return self


class RetryDelays(Section):
    """Wait before re-dialing a lead after each non-final result, in minutes."""

    busy: PositiveMinutes = 10
    no_answer: PositiveMinutes = 60
    machine: PositiveMinutes = 240
    failed: PositiveMinutes = 30


# The FTC (US, 30 days) and Ofcom (UK, 24 h) both cap abandoned calls at 3 % of live answers.
LEGAL_ABANDON_PERCENT = 3.0


class AbandonSettings(Section):
    # Above the legal 3 % is allowed (other jurisdictions differ) but warned about at create.
    target_percent: float = Field(default=LEGAL_ABANDON_PERCENT, gt=0, le=100)
    # Windows over which the abandon rate is held under target: 24 h (Ofcom), 30 days (FTC).
    windows_hours: tuple[Annotated[int, Field(gt=0)], ...] = (24, 720)
    recall_gap_hours: int = Field(default=72, ge=0)
    safe_harbor_sound: str = Field(default="", description="message played to an abandoned call")


Milliseconds = Annotated[int, Field(gt=0, le=60_000)]


class AmdSettings(Section):
    """Answering-machine detection: Asterisk's AMD() on every answer. The tuning fields are
    AMD()'s own parameters (see amd.conf); unset ones keep amd.conf's value."""

    enabled: bool = False
    action: Literal["hangup", "leave_message"] = "hangup"
    message_sound: str = ""
    initial_silence_ms: Milliseconds | None = None  # longer silence before speech: machine
    greeting_ms: Milliseconds | None = None  # longer first speech: machine
    after_greeting_silence_ms: Milliseconds | None = None  # this much silence after it: human
    total_analysis_time_ms: Milliseconds | None = None  # undecided after this: NOTSURE
    min_word_length_ms: Milliseconds | None = None
    between_words_silence_ms: Milliseconds | None = None
    maximum_number_of_words: int | None = Field(default=None, ge=1, le=100)  # more: machine
    silence_threshold: int | None = Field(default=None, ge=1, le=32767)  # mean level of silence
    maximum_word_length_ms: Milliseconds | None = None  # a longer word: machine

    @model_validator(mode="after")
    def _message_needs_sound(self) -> AmdSettings:
        if self.enabled and self.action == "leave_message" and not self.message_sound:
            raise ValueError("amd.action = 'leave_message' needs amd.message_sound")
        return self

    def dialplan_args(self) -> str:
        """AMD()'s argument list for these settings, in AMD()'s order; an empty argument keeps
        amd.conf's value, and no tuning at all gives "" (plain ``AMD()``)."""
        values = [
            self.initial_silence_ms, self.greeting_ms, self.after_greeting_silence_ms,
            self.total_analysis_time_ms, self.min_word_length_ms, self.between_words_silence_ms,
            self.maximum_number_of_words, self.silence_threshold, self.maximum_word_length_ms,
        ]
        while values and values[-1] is None:
            values.pop()
        return ",".join("" if value is None else str(value) for value in values)


class Disposition(Section):
    """What a call came to, as the agent says with one key in wrap-up, and what it does to the
    lead: ``done`` finishes it, ``retry`` dials it again after ``retry_minutes`` (while it has
    attempts left), ``dnc`` puts its number on the global do-not-call list (the customer asked
    not to be called: that holds for every campaign)."""

    name: DispositionName
    lead: Literal["done", "retry", "dnc"] = "done"
    retry_minutes: int = Field(default=60, ge=0, description="read with lead = 'retry'")


class CampaignSettings(Section):
    trunk: str = Field(min_length=1, description="PJSIP endpoint the calls go out through")
    caller_id: str = Field(min_length=1)
    default_region: str = Field(default="US", description="region for numbers without +CC")
    dialing_mode: DialingMode = "progressive"
    agents: AgentGroup
    calling_hours: CallingHours = CallingHours()
    max_attempts: int = Field(default=3, ge=1)
    retry_delay_minutes: RetryDelays = RetryDelays()
    ring_timeout_seconds: int = Field(default=25, ge=MIN_RING_TIMEOUT_SECONDS)
    abandon: AbandonSettings = AbandonSettings()
    amd: AmdSettings = AmdSettings()
    line_cap: int = Field(default=10, ge=1, description="concurrent calls on the trunk")
    agent_wrapup_seconds: int = Field(
        default=5, ge=0, description="after-call work before an agent gets the next call"
    )
    calls_per_second: float = Field(default=1.0, gt=0)
    max_call_seconds: int = Field(
        default=0,
        ge=0,
        description="hang up an answered call after this long (0: never): frees an agent held"
        " by a call whose far end vanished without a BYE",
    )
    # key -> disposition; the agent has agent_wrapup_seconds to press one, which ends wrap-up
    dispositions: dict[DispositionKey, Disposition] = Field(default_factory=dict)

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {value!r} (use a two-letter code like 'US', 'GB')")
        return region

    @field_validator("dispositions")
    @classmethod
    def _distinct_names(cls, value: dict[str, Disposition]) -> dict[str, Disposition]:
        check_distinct(disposition.name for disposition in value.values())
        return value

    @property
    def recall_gap(self) -> timedelta:
        return timedelta(hours=self.abandon.recall_gap_hours)


def parse_campaign_settings(data: object, source: str = "<campaign>") -> CampaignSettings:
    try:
        return CampaignSettings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(source, validation_problems(error)) from None


def load_campaign_settings(path: str | Path) -> CampaignSettings:
    """Read and validate a campaign TOML; every problem is reported with the file and key path."""
    file = Path(path)
    try:
        text = file.read_bytes().decode("utf-8")
    except OSError as error:
        raise ConfigError(str(file), [("", f"cannot read file: {error.strerror}")]) from None
    except UnicodeDecodeError:
        raise ConfigError(str(file), [("", "file is not UTF-8 text")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(file), [("", f"not valid TOML: {error}")]) from None
    return parse_campaign_settings(data, str(file))


# What a campaign's settings may not change to once created: its abandon rate is counted over
# these windows (the runner's feedback, the status report), so a change would judge the same
# history by another rule. Other windows are another campaign.
FIXED_AFTER_CREATE = ("abandon.windows_hours",)


def changed_keys(old: CampaignSettings, new: CampaignSettings) -> tuple[str, ...]:
    """The dotted key paths (``abandon.target_percent``) whose values differ, in the order the
    settings declare them."""

    def leaves(value: Any, path: str) -> dict[str, Any]:
        if isinstance(value, dict):
            return {
                key: leaf
                for name, item in value.items()
                for key, leaf in leaves(item, f"{path}.{name}" if path else name).items()
            }
        return {path: value}

    before, after = leaves(old.model_dump(mode="json"), ""), leaves(new.model_dump(mode="json"), "")
    return tuple(key for key in after if before.get(key) != after[key])


def settings_toml(settings: CampaignSettings) -> str:
    """The settings as a campaign TOML file that loads back to the same settings: what to edit
    for ``callctl campaign update`` when the file the campaign was created from is not at hand.
    Unset optional keys (AMD's tuning) are left out, as they would be in a written file."""

    def value(item: object) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, int | float):
            return repr(item)
        if isinstance(item, time):
            return item.isoformat()
        if isinstance(item, tuple | list):
            return "[" + ", ".join(value(part) for part in item) + "]"
        # A JSON string is a TOML basic string once DEL, which TOML wants escaped, is.
        return json.dumps(str(item), ensure_ascii=False).replace("\x7f", "\\u007f")

    def table(data: dict[str, Any], header: str) -> list[str]:
        lines = [f"[{header}]"] if header else []
        lines += [f"{key} = {value(item)}" for key, item in data.items()
                  if item is not None and not isinstance(item, dict)]
        for key, item in data.items():
            if isinstance(item, dict):
                lines += ["", *table(item, f"{header}.{key}" if header else key)]
        return lines

    return "\n".join(table(settings.model_dump(), "")) + "\n"
