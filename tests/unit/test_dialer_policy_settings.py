"""Campaign settings: defaults, cross-field rules with key paths, the shipped example, the
TOML they print as and what an update changes."""

from __future__ import annotations

import tomllib
from datetime import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.config import ConfigError
from controller.dialer.leads import parse_leads
from controller.dialer.settings import (
    changed_keys,
    load_campaign_settings,
    parse_campaign_settings,
    settings_toml,
)

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
        # dialed as PJSIP/<id>: an id is what an agent's phone registers as, nothing more
        ({"agents": {"agent_ids": ["1001", "1002&PJSIP/x"]}}, "agents.agent_ids[1]", "pattern"),
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


EVERY_SECTION = {
    **BASE,
    "dialing_mode": "predictive",
    "agents": {"agent_ids": ["1001", "1002"]},
    "calling_hours": {"start": "08:30", "end": "20:15:30"},
    "retry_delay_minutes": {"busy": 0, "machine": 1440},
    "abandon": {"target_percent": 1.5, "windows_hours": [1, 24], "safe_harbor_sound": "sh"},
    "amd": {"enabled": True, "greeting_ms": 1500, "maximum_number_of_words": 4},
    "calls_per_second": 0.25,
}


@pytest.mark.parametrize("data", [BASE, EVERY_SECTION], ids=["defaults", "every-section"])
def test_printed_toml_loads_back_to_the_same_settings(data: dict[str, object]) -> None:
    settings = parse_campaign_settings(data)
    text = settings_toml(settings)
    assert parse_campaign_settings(tomllib.loads(text)) == settings
    assert "total_analysis_time_ms" not in text  # unset AMD tuning stays unset


# no lone surrogates: they are not text a TOML (or any UTF-8) file can hold; no control
# characters: settings refuse them (test_section)
TEXT = st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=30)


@given(TEXT, TEXT)
def test_any_text_survives_the_printed_toml(caller_id: str, sound: str) -> None:
    settings = parse_campaign_settings(
        {**BASE, "caller_id": caller_id, "abandon": {"safe_harbor_sound": sound}}
    )
    assert parse_campaign_settings(tomllib.loads(settings_toml(settings))) == settings


def test_changed_keys_are_dotted_paths_in_declaration_order() -> None:
    old = parse_campaign_settings(BASE)
    new = parse_campaign_settings({
        **BASE, "line_cap": 20, "dialing_mode": "predictive", "abandon": {"target_percent": 2},
        "agents": {"agent_ids": ["1001"]},
    })
    assert changed_keys(old, new) == (
        "dialing_mode", "agents.queue", "agents.agent_ids", "abandon.target_percent", "line_cap"
    )
    assert changed_keys(old, parse_campaign_settings(dict(BASE))) == ()
