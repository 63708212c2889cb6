"""Every config model's base refuses control characters and non-finite floats, naming the key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from controller.config import ConfigError, load_config
from controller.dialer.settings import load_campaign_settings

from .test_config import VALID

CAMPAIGN = """
trunk = "trunk"
caller_id = "+12125550100"

[agents]
queue = "sales"
"""
QUEUE = '\n[inbound.queues.sales]\nvip_callers = ["+12125550100", "\\t+12125550101"]\n'


@pytest.mark.parametrize(
    ("load", "text", "key", "words"),
    [
        (load_config, VALID.replace('"callctl"', '"a\\u0000b"', 1), "ami.username",
         "control character U+0000 is not allowed"),
        (load_config, VALID.replace('"t0ken"', '"\\u001b[31m"'), "http.api_token",
         "control character U+001B is not allowed"),
        (load_config, VALID + QUEUE, "inbound.queues.sales.vip_callers",
         "control character U+0009 is not allowed (in [1])"),
        (load_config, VALID + '\n[agents.1001]\nname = """Ann\nLee"""\n',
         "agents.1001.name", "control character U+000A is not allowed"),
        (load_config, VALID.replace('secret = "s3cret"', 'secret = "s"\naction_timeout = inf'),
         "ami.action_timeout", "finite number"),
        (load_campaign_settings, CAMPAIGN.replace('"+12125550100"', '"\\u001b[31m+1212"'),
         "caller_id", "control character U+001B is not allowed"),
        (load_campaign_settings, "calls_per_second = nan\n" + CAMPAIGN, "calls_per_second",
         "finite number"),
    ],
    ids=["nul", "escape-in-secret", "tab-in-list", "newline", "inf", "campaign-escape",
         "campaign-nan"],
)
def test_control_characters_and_non_finite_floats_are_refused_by_key(
    tmp_path: Path, load: Callable[[Path], object], text: str, key: str, words: str
) -> None:
    file = tmp_path / "config.toml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load(file)
    [(where, message)] = caught.value.problems
    assert where == key
    assert words in message
    assert "\x1b" not in caught.value.render()  # the refused text is not echoed


def test_a_holiday_calendar_may_hold_line_breaks(tmp_path: Path) -> None:
    """iCalendar text is not config text: a multi-line SUMMARY still loads."""
    (tmp_path / "holidays.ics").write_bytes(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:Bank\\nholiday\r\n"
        b"DTSTART;VALUE=DATE:20261225\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    schedule = (
        '\n[inbound.schedules.office]\ntimezone = "UTC"\nafter_hours = "queue:sales"\n'
        'holiday_files = ["holidays.ics"]\n[inbound.queues.sales]\n'
    )
    file = tmp_path / "config.toml"
    file.write_text(VALID + schedule, encoding="utf-8")
    [holidays] = load_config(file).inbound.schedules["office"].holiday_files
    assert [event.summary for event in holidays.events] == ["Bank\nholiday"]
