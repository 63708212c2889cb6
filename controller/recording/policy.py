"""Recording decisions (pure): record this call? in which file, with which options, kept how long?

Sampling hashes the call id instead of drawing a random number, so the decision for a call is
the same after a controller restart or on a second look (and a test can predict it). Paths are
built from the call's start date in UTC and a validated call id: nothing a caller controls can
steer a file outside the recordings root.

MixMonitor options: ``b`` records only while bridged (no hold music before the agent answers).
Stereo uses ``D`` (interleave the audio read from the channel, the caller, with the audio written
to it, the agent), which Asterisk only writes correctly into a ``.raw`` (signed linear 8 kHz)
file; the controller wraps it into a stereo WAV when the call ends. Mono writes a WAV directly.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Literal

from controller.recording.config import RecordingConfig, RecordingPolicy

CALL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SAMPLE_BUCKETS = 10_000  # sampling resolution: 0.01 %
IN_PROGRESS_SUFFIX = ".partial"

Direction = Literal["inbound", "outbound"]


class InvalidCallId(ValueError):
    """A call id that cannot name a file (empty, too long, path separators, ``..``)."""


def check_call_id(call_id: str) -> str:
    if not CALL_ID_PATTERN.fullmatch(call_id) or ".." in call_id:
        raise InvalidCallId(
            f"invalid call id {call_id!r}: use 1-128 letters, digits, '.', '_', '-' and no '..'"
        )
    return call_id


@dataclass(frozen=True)
class CallFacts:
    """What the recorder knows about a call when it decides."""

    call_id: str
    direction: Direction
    started_at: datetime
    queue: str | None = None
    campaign: str | None = None


@dataclass(frozen=True)
class RecordingDecision:
    record: bool
    policy_name: str  # "queue:sales", "campaign:spring", "default"
    stereo: bool
    consent_announcement: str | None
    retention_days: int | None
    final_path: PurePosixPath  # relative to the recordings root, the listed WAV
    capture_path: PurePosixPath  # relative to the root, what Asterisk writes while recording
    mixmonitor_options: str


def select_policy(config: RecordingConfig, queue: str | None, campaign: str | None) -> tuple[
    str, RecordingPolicy
]:
    """The campaign's policy, else the queue's, else ``default``, with the name that applied."""
    if campaign is not None and campaign in config.campaigns:
        return f"campaign:{campaign}", config.campaigns[campaign]
    if queue is not None and queue in config.queues:
        return f"queue:{queue}", config.queues[queue]
    return "default", config.default


def in_sample(call_id: str, percent: float) -> bool:
    """Deterministic sampling: the same call id always gets the same answer."""
    digest = hashlib.sha256(call_id.encode("utf-8")).digest()
    bucket = int.from_bytes(digest[:8], "big") % SAMPLE_BUCKETS
    return bucket < round(percent * SAMPLE_BUCKETS / 100)


def should_record(call_id: str, policy: RecordingPolicy) -> bool:
    if policy.record == "all":
        return True
    if policy.record == "sample":
        return in_sample(call_id, policy.sample_percent or 0.0)
    return False


def recording_path(call_id: str, started_at: datetime) -> PurePosixPath:
    """``YYYY/MM/DD/<call-id>.wav`` from the UTC start date."""
    day = started_at.astimezone(UTC)
    return PurePosixPath(f"{day:%Y}", f"{day:%m}", f"{day:%d}", f"{check_call_id(call_id)}.wav")


def capture_path(final_path: PurePosixPath, stereo: bool) -> PurePosixPath:
    """The file Asterisk writes while the call lasts; never listed (see ``IN_PROGRESS_SUFFIX``)."""
    extension = "raw" if stereo else "wav"
    return final_path.with_name(f"{final_path.stem}{IN_PROGRESS_SUFFIX}.{extension}")


def mixmonitor_options(stereo: bool) -> str:
    return "bD" if stereo else "b"


def decide_recording(config: RecordingConfig, call: CallFacts) -> RecordingDecision:
    name, policy = select_policy(config, call.queue, call.campaign)
    stereo = policy.channels == "stereo"
    final = recording_path(call.call_id, call.started_at)
    return RecordingDecision(
        record=should_record(call.call_id, policy),
        policy_name=name,
        stereo=stereo,
        consent_announcement=policy.consent_announcement,
        retention_days=policy.retention_days,
        final_path=final,
        capture_path=capture_path(final, stereo),
        mixmonitor_options=mixmonitor_options(stereo),
    )


def consent_to_play(decision: RecordingDecision, already_played: bool) -> str | None:
    """The announcement to play before the agent is connected: once per call, never on transfer."""
    if not decision.record or already_played:
        return None
    return decision.consent_announcement


def retention_for(config: RecordingConfig, policy_name: str, stored_days: int | None) -> int | None:
    """Retention in days under today's config for a recording made under ``policy_name``.

    The current policy wins (shortening a retention must reach old files); a policy removed from
    the config falls back to the days stored with the recording.
    """
    kind, _, key = policy_name.partition(":")
    if kind == "default":
        return config.default.retention_days
    table = config.queues if kind == "queue" else config.campaigns if kind == "campaign" else {}
    if key in table:
        return table[key].retention_days
    return stored_days


def is_expired(ended_at: datetime, retention_days: int | None, now: datetime) -> bool:
    """Strictly older than the retention: a file exactly at its limit is kept until later."""
    if retention_days is None:
        return False
    return now - ended_at > timedelta(days=retention_days)
