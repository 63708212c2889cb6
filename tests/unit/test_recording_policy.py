"""Pure recording decisions: policy choice, deterministic sampling, paths, consent, expiry."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.config import ConfigError, parse_config
from controller.recording import policy
from controller.recording.config import RecordingConfig, RecordingPolicy

from .test_recording_support import T0

BASE = {
    "http": {"api_token": "t"},
    "ami": {"username": "u", "secret": "s"},
    "ari": {"username": "u", "password": "p"},
}

CONFIG = RecordingConfig(
    default=RecordingPolicy(record="none"),
    queues={
        "sales": RecordingPolicy(
            record="all", channels="stereo", consent_announcement="custom/consent",
            retention_days=30,
        ),
        "support": RecordingPolicy(record="sample", sample_percent=25, retention_days=7),
    },
    campaigns={"spring": RecordingPolicy(record="all", retention_days=90)},
)


def facts(call_id: str = "1700000000.42", **kw: Any) -> policy.CallFacts:
    return policy.CallFacts(call_id=call_id, direction="inbound", started_at=T0, **kw)


def test_absent_section_is_valid_and_records_nothing() -> None:
    config = parse_config(BASE)
    decision = policy.decide_recording(config.recording, facts(queue="sales"))
    assert decision.record is False
    assert decision.policy_name == "default"


def test_sampling_without_percent_names_the_key() -> None:
    data = BASE | {"recording": {"queues": {"sales": {"record": "sample"}}}}
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    [(path, message)] = caught.value.problems
    assert path == "recording.queues.sales"
    assert "sample_percent is required" in message


def test_percent_out_of_range_names_the_key() -> None:
    data = BASE | {"recording": {"default": {"record": "sample", "sample_percent": 150}}}
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert caught.value.problems[0][0] == "recording.default.sample_percent"


def test_relative_asterisk_root_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE | {"recording": {"asterisk_root": "spool/rec"}})
    assert "asterisk_root must be an absolute path" in caught.value.render()


def test_asterisk_root_defaults_to_root() -> None:
    config = RecordingConfig(root="/srv/rec")  # type: ignore[arg-type]
    assert config.asterisk_dir == PurePosixPath("/srv/rec")
    chroot = RecordingConfig(root="/srv/ast/var/rec", asterisk_root="/var/rec")  # type: ignore[arg-type]
    assert chroot.asterisk_dir == PurePosixPath("/var/rec")


def test_campaign_policy_wins_over_queue_and_default() -> None:
    assert policy.select_policy(CONFIG, "sales", "spring")[0] == "campaign:spring"
    assert policy.select_policy(CONFIG, "sales", None)[0] == "queue:sales"
    assert policy.select_policy(CONFIG, "unknown", "other")[0] == "default"


def test_stereo_policy_uses_interleave_into_raw_capture() -> None:
    decision = policy.decide_recording(CONFIG, facts(queue="sales"))
    assert decision.record and decision.stereo
    assert "D" in decision.mixmonitor_options
    assert decision.capture_path == PurePosixPath("2026/03/14/1700000000.42.partial.raw")
    assert decision.final_path == PurePosixPath("2026/03/14/1700000000.42.wav")


def test_mono_policy_captures_wav_without_interleave() -> None:
    decision = policy.decide_recording(CONFIG, facts(campaign="spring"))
    assert "D" not in decision.mixmonitor_options
    assert decision.capture_path.suffix == ".wav"
    assert decision.retention_days == 90


def test_path_uses_utc_date() -> None:
    late_evening_in_new_york = datetime(2026, 12, 31, 22, 0, tzinfo=timezone(timedelta(hours=-5)))
    path = policy.recording_path("abc", late_evening_in_new_york)
    assert path == PurePosixPath("2027/01/01/abc.wav")


@pytest.mark.parametrize(
    "call_id", ["", "../etc/passwd", "a/b", "a..b", ".hidden", "x" * 129, "a b", "a\\b", "é"]
)
def test_unsafe_call_ids_are_refused(call_id: str) -> None:
    with pytest.raises(policy.InvalidCallId):
        policy.recording_path(call_id, T0)


@given(st.text(min_size=1, max_size=40))
def test_sampling_is_deterministic(call_id: str) -> None:
    assert policy.in_sample(call_id, 25) == policy.in_sample(call_id, 25)


@given(st.text(min_size=1, max_size=40))
def test_sampling_extremes_and_monotonic(call_id: str) -> None:
    assert policy.in_sample(call_id, 0) is False
    assert policy.in_sample(call_id, 100) is True
    if policy.in_sample(call_id, 10):
        assert policy.in_sample(call_id, 50)


def test_sampling_rate_is_close_to_percent() -> None:
    hits = sum(policy.in_sample(f"1700000000.{n}", 25) for n in range(20_000))
    assert 4_600 < hits < 5_400


def test_consent_once_and_only_when_recording() -> None:
    decision = policy.decide_recording(CONFIG, facts(queue="sales"))
    assert policy.consent_to_play(decision, already_played=False) == "custom/consent"
    assert policy.consent_to_play(decision, already_played=True) is None
    not_recorded = policy.decide_recording(CONFIG, facts(queue="nowhere"))
    assert policy.consent_to_play(not_recorded, already_played=False) is None


def test_retention_follows_current_policy_then_stored_days() -> None:
    assert policy.retention_for(CONFIG, "queue:sales", 365) == 30
    assert policy.retention_for(CONFIG, "queue:removed", 365) == 365
    assert policy.retention_for(CONFIG, "default", 5) is None


def test_expiry_is_strictly_after_retention() -> None:
    ended = T0
    assert not policy.is_expired(ended, 30, ended + timedelta(days=30))
    assert policy.is_expired(ended, 30, ended + timedelta(days=30, seconds=1))
    assert not policy.is_expired(ended, None, ended + timedelta(days=10_000))

