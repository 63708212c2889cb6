"""A campaign's AMD tuning fields and the AMD() argument list they give the dialplan."""

from __future__ import annotations

import pytest

from controller.config import ConfigError
from controller.dialer.settings import AmdSettings, parse_campaign_settings

BASE = {"trunk": "trunk", "caller_id": "Callctl <5550100>", "agents": {"agent_ids": ["1001"]}}


def test_no_tuning_is_a_plain_amd_call_with_amd_conf_values() -> None:
    assert AmdSettings(enabled=True).dialplan_args() == ""


def test_tuning_fields_fill_their_positions_and_leave_the_others_empty() -> None:
    settings = AmdSettings(greeting_ms=2000, maximum_number_of_words=4)
    assert settings.dialplan_args() == ",2000,,,,,4"
    full = AmdSettings(
        initial_silence_ms=2500, greeting_ms=1500, after_greeting_silence_ms=800,
        total_analysis_time_ms=5000, min_word_length_ms=100, between_words_silence_ms=50,
        maximum_number_of_words=2, silence_threshold=256, maximum_word_length_ms=5000,
    )
    assert full.dialplan_args() == "2500,1500,800,5000,100,50,2,256,5000"


@pytest.mark.parametrize(("key", "value"), [
    ("greeting_ms", 0), ("silence_threshold", 40000), ("maximum_number_of_words", 0),
    ("total_analysis_time_ms", "long"),
])
def test_a_bad_tuning_value_names_its_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as error:
        parse_campaign_settings({**BASE, "amd": {"enabled": True, key: value}}, "c.toml")
    assert f"amd.{key}" in str(error.value)
