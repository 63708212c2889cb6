"""Campaign settings: defaults, cross-field rules with key paths, the shipped example."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from controller.config import ConfigError
from controller.dialer.leads import parse_leads
from controller.dialer.settings import load_campaign_settings, parse_campaign_settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE = {"trunk": "trunk", "caller_id": "+12125550100", "agents": {"queue": "sales"}}


def problems(data: dict[str, object]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as raised:
        parse_campaign_settings(data, "c.toml")
    return raised.value.problems


def test_defaults_follow_the_regulations() -> None:
    settings = parse_campaign_settings(BASE)
    assert settings.abandon.target_percent == 3.0
    assert settings.abandon.windows_hours == (24, 720)
    assert settings.abandon.recall_gap_hours == 72
    assert (settings.calling_hours.start, settings.calling_hours.end) == (time(9), time(21))
    assert settings.ring_timeout_seconds >= 15


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"agents": {"queue": "sales", "agent_ids": ["1001"]}}, "agents", "exactly one"),
        ({"agents": {}}, "agents", "exactly one"),
        ({"calling_hours": {"start": "21:00", "end": "09:00"}}, "calling_hours", "before"),
        ({"default_region": "XX"}, "default_region", "unknown region"),
        ({"amd": {"enabled": True, "action": "leave_message"}}, "amd", "message_sound"),
        ({"ring_timeout_seconds": 14}, "ring_timeout_seconds", "15"),
        ({"dialing_mode": "blast"}, "dialing_mode", "preview"),
        ({"retry_delay_minutes": {"busy": -1}}, "retry_delay_minutes.busy", "greater"),
    ],
)
def test_bad_settings_name_the_key(change: dict[str, object], path: str, words: str) -> None:
    [(where, message)] = problems({**BASE, **change})
    assert where == path
    assert words in message


def test_settings_round_trip_through_json() -> None:
    settings = parse_campaign_settings({**BASE, "agents": {"agent_ids": ["1001", "1002"]}})
    assert type(settings).model_validate_json(settings.model_dump_json()) == settings


def test_shipped_examples_are_valid() -> None:
    settings = load_campaign_settings(EXAMPLES / "campaign-demo.toml")
    parsed = parse_leads((EXAMPLES / "leads-demo.csv").read_bytes(), settings.default_region)
    assert len(parsed.leads) == 5 and len(parsed.problems) == 1
    assert len(parsed.no_timezone) == 1


def test_unreadable_settings_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read file"):
        load_campaign_settings(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("trunk = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_campaign_settings(bad)
