"""Call recording on the real stack: queue calls recorded by MixMonitor, measured in the file.

The caller's phone plays a 400 Hz tone and the agent's phone a 1000 Hz tone (testbed.tone_pcap),
so the recording shows by frequency who is heard where: both in mono, each on its own channel in
stereo, neither while a PCI pause holds. MixMonitor runs with ``b`` (bridged audio only), so the
file starts when the agent answers: file time 0 is the call's ``answered_at``.
"""

from __future__ import annotations

import array
import asyncio
import hashlib
import io
import json
import math
import subprocess
import sys
import wave
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.app import RunningController
from controller.config import Config
from controller.logs import configure_logging
from controller.store.base import from_iso, to_iso
from testbed.asterisk import AGENT_PHONE_IP, AsteriskInstance
from testbed.sipp import Sipp, SippPool
from testbed.tone_pcap import write_tone_pcap

from .harness import Api, running_controller, wait_for, with_sections

CALLER_HZ = 400.0
AGENT_HZ = 1000.0
TONE_SECONDS = 45.0
AGENT = "1001"
CALLER_NUMBER = "0441234567"  # the tone caller's default From number
DID = "5000"  # demo routing: 5000 -> queue support (members 1001-1003), always open
SILENCE_PEAK = 64  # MixMonitorMute writes digital silence; allow a little codec noise
AUDIBLE_PEAK = 2000  # the tones are at about 8000


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("tones")
    return {
        "caller": write_tone_pcap(directory / "caller.pcap", CALLER_HZ, TONE_SECONDS),
        "agent": write_tone_pcap(directory / "agent.pcap", AGENT_HZ, TONE_SECONDS, ssrc=0xA6E7),
    }


def recording_toml(asterisk: AsteriskInstance, channels: str = "mono", *,
                   root: Path | None = None, asterisk_root: str | None = None) -> str:
    root = root or asterisk.monitor_dir
    asterisk_root = asterisk_root or str(asterisk.spool_dir / "monitor")
    return f"""
[recording]
root = {json.dumps(str(root))}
asterisk_root = {json.dumps(asterisk_root)}
min_free_bytes = 0

[recording.queues.support]
record = "all"
channels = "{channels}"
retention_days = 30
"""


def configured(controller_config_file: Path, toml: str) -> Config:
    return with_sections(controller_config_file, toml,
                         controller_config_file.with_name("recording.toml"))


def agent_phone(sipp: SippPool, asterisk: AsteriskInstance, tones: dict[str, Path]) -> Sipp:
    return sipp.start("tone_agent_phone", local_ip=AGENT_PHONE_IP, port=asterisk.ports.agent_phone,
                      values={"PCAP": str(tones["agent"]), "TALK_MS": "60000"})


def call(sipp: SippPool, tones: dict[str, Path], hold_ms: int) -> Sipp:
    return sipp.start("tone_caller", local_ip="127.0.0.2", uac=True, service=DID, calls=1,
                      values={"PCAP": str(tones["caller"]), "HOLD_MS": str(hold_ms),
                              "CALLER": CALLER_NUMBER})


@asynccontextmanager
async def agent_logged_in(api: Api) -> AsyncIterator[None]:
    status, body = await api.request("POST", f"/api/v1/agents/{AGENT}/login", {})
    assert status == 200, body
    try:
        yield
    finally:
        await api.request("POST", f"/api/v1/agents/{AGENT}/logout", {})


async def answered_call_id(running: RunningController, within_s: float = 20) -> str:
    """The id of the live queue call once the agent has answered it."""
    def answered() -> str | None:
        calls = running.controller.router.calls.values()
        return next((c.call_id for c in calls if c.outcome == "answered"), None)

    return str(await wait_for(answered, within_s, "the agent to answer the queue call"))


async def call_row(config: Config, call_id: str, within_s: float = 10) -> dict[str, Any]:
    """The inbound call's row once the call has ended (answered_at, ended_at)."""
    from controller.store import open_store

    store = await open_store(config.store.url)
    try:
        return dict(await wait_for(
            lambda: store.fetchone(
                "SELECT * FROM inbound_calls WHERE call_id = :id AND ended_at IS NOT NULL",
                {"id": call_id}),
            within_s, f"the end of call {call_id} in the store"))
    finally:
        await store.close()


async def finished_recording(api: Api, call_id: str, status: str = "complete",
                             within_s: float = 30) -> dict[str, Any]:
    async def row() -> dict[str, Any] | None:
        code, body = await api.request("GET", f"/api/v1/recordings/{call_id}")
        return body if code == 200 and body["status"] == status else None

    return dict(await wait_for(row, within_s, f"recording of {call_id} to be {status}"))


def channel_samples(path: Path, channel: int, start: float = 0.0,
                    end: float | None = None) -> array.array[int]:
    with wave.open(str(path), "rb") as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        first = int(start * rate)
        last = wav.getnframes() if end is None else min(int(end * rate), wav.getnframes())
        wav.setpos(first)
        samples = array.array("h", wav.readframes(max(last - first, 0)))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples[channel::channels]


def tone_power(samples: array.array[int], frequency: float, rate: int = 8000) -> float:
    """Goertzel: the signal's power at ``frequency`` (normalised per sample)."""
    coefficient = 2 * math.cos(2 * math.pi * frequency / rate)
    before = earlier = 0.0
    for sample in samples:
        before, earlier = sample + coefficient * before - earlier, before
    return (before * before + earlier * earlier - coefficient * before * earlier) / max(
        len(samples), 1) ** 2


def heard(samples: array.array[int]) -> set[float]:
    """Which of the two tones dominate a slice (a tone counts above 5 % of the stronger)."""
    powers = {hz: tone_power(samples, hz) for hz in (CALLER_HZ, AGENT_HZ)}
    strongest = max(powers.values())
    return {hz for hz, power in powers.items() if strongest > 1000 and power > 0.05 * strongest}


def peak(samples: array.array[int]) -> int:
    return max((abs(s) for s in samples), default=0)


def seconds_between(earlier: str, later: str) -> float:
    return (from_iso(later) - from_iso(earlier)).total_seconds()


def cli(config_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli.main", "--config", str(config_file), *args],
        capture_output=True, text=True, timeout=30, check=False,
    )


def json_report(stdout: str) -> Any:
    """The command's JSON report; the CLI's default structlog output can precede it on stdout
    (reported to the lead: the CLI should send logs to stderr)."""
    return json.loads(stdout[stdout.index("{\n"):])


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def captured_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    yield stream


def log_events(stream: io.StringIO, name: str) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    return [event for event in events if event.get("event") == name]


def metric(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no series {series} in /metrics")


async def recordings_metric(api: Api, result: str) -> float:
    _, body = await api.request("GET", "/metrics", token=None)
    return metric(body.decode(), f'callctl_recordings_total{{result="{result}"}}')


async def test_queue_call_is_recorded_with_talk_time_and_metadata(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool,
    tones: dict[str, Path],
) -> None:
    config = configured(controller_config_file, recording_toml(asterisk))
    api = Api(config)
    agent_phone(sipp, asterisk, tones)
    async with running_controller(config) as running, agent_logged_in(api):
        caller = call(sipp, tones, hold_ms=9000)
        call_id = await answered_call_id(running)
        await asyncio.to_thread(caller.wait, 40)
        row = await finished_recording(api, call_id)
        assert await recordings_metric(api, "saved") == 1.0
        assert await recordings_metric(api, "failed") == 0.0
        code, audio_bytes = await api.request("GET", f"/api/v1/recordings/{call_id}/audio")
    answered = await call_row(config, call_id)

    started = from_iso(row["started_at"])
    assert row["path"] == f"{started:%Y/%m/%d}/{call_id}.wav"
    wav = asterisk.monitor_dir / row["path"]
    with wave.open(str(wav), "rb") as audio:
        channels, rate, frames = audio.getnchannels(), audio.getframerate(), audio.getnframes()
    assert (channels, rate) == (1, 8000)
    talk = seconds_between(answered["answered_at"], answered["ended_at"])
    assert abs(frames / rate - talk) <= 1.0, (frames / rate, talk)
    assert row["duration_seconds"] == pytest.approx(frames / rate)
    assert (row["call_id"], row["direction"], row["queue"], row["agent_id"]) == (
        call_id, "inbound", "support", AGENT)
    assert (row["caller"], row["callee"], row["policy"]) == (CALLER_NUMBER, DID, "queue:support")
    assert row["stereo"] is False and row["retention_days"] == 30 and row["paused"] == []
    assert row["started_at"] <= answered["answered_at"] < row["ended_at"]
    assert row["size_bytes"] == wav.stat().st_size
    assert row["sha256"] == hashlib.sha256(wav.read_bytes()).hexdigest()
    assert code == 200 and audio_bytes == wav.read_bytes()
    assert not list(wav.parent.glob(f"{call_id}.partial.*"))  # Asterisk's capture is gone
    # mono: both sides are in the one channel
    assert heard(channel_samples(wav, 0, 1.0, frames / rate - 1.0)) == {CALLER_HZ, AGENT_HZ}

    # purge end to end: a fresh recording is kept; aged past its retention, only --dry-run lists it
    config_file = controller_config_file.with_name("recording.toml")
    kept = cli(config_file, "recording", "purge", "--json")
    assert kept.returncode == 0 and json.loads(kept.stdout)["purged"] == [], kept.stderr
    await _age_recording(config, call_id, timedelta(days=31))
    dry = cli(config_file, "recording", "purge", "--dry-run", "--json")
    assert json.loads(dry.stdout)["purged"] == [call_id] and wav.exists()
    real = cli(config_file, "recording", "purge", "--json")
    assert json_report(real.stdout)["purged"] == [call_id], real.stderr
    assert not wav.exists()
    listing = cli(config_file, "recording", "list", "--json")
    assert json.loads(listing.stdout) == []


async def _age_recording(config: Config, call_id: str, age: timedelta) -> None:
    """Move a recording's end back in time, as if it had been made ``age`` ago."""
    from controller.store import open_store

    store = await open_store(config.store.url)
    try:
        await store.execute(
            "UPDATE recordings SET ended_at = :at WHERE call_id = :id",
            {"at": to_iso(datetime.now(UTC) - age), "id": call_id})
    finally:
        await store.close()


async def test_stereo_separates_sides_and_pci_pause_is_silent(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool,
    tones: dict[str, Path],
) -> None:
    config = configured(controller_config_file, recording_toml(asterisk, "stereo"))
    config_file = controller_config_file.with_name("recording.toml")
    api = Api(config)
    agent_phone(sipp, asterisk, tones)
    async with running_controller(config) as running, agent_logged_in(api):
        caller = call(sipp, tones, hold_ms=16000)
        call_id = await answered_call_id(running)
        await asyncio.sleep(4)
        paused = await asyncio.to_thread(cli, config_file, "recording", "pause", call_id)
        assert paused.returncode == 0, paused.stderr
        assert "paused" in paused.stdout
        await asyncio.sleep(3)
        status, body = await api.request("POST", f"/api/v1/recordings/{call_id}/resume")
        assert (status, body["state"], body["changed"]) == (200, "recording", True)
        status, body = await api.request("POST", f"/api/v1/recordings/{call_id}/resume")
        assert (status, body["changed"]) == (200, False)  # resuming twice changes nothing
        await asyncio.to_thread(caller.wait, 40)
        row = await finished_recording(api, call_id)
    answered = await call_row(config, call_id)

    wav = asterisk.monitor_dir / row["path"]
    with wave.open(str(wav), "rb") as audio:
        assert (audio.getnchannels(), audio.getframerate()) == (2, 8000)
        length = audio.getnframes() / audio.getframerate()
    assert row["stereo"] is True
    [pause] = row["paused"]
    pause_from = seconds_between(answered["answered_at"], pause["started_at"])
    pause_to = seconds_between(answered["answered_at"], pause["ended_at"])
    assert 2.5 <= pause_to - pause_from <= 4.5, pause
    # channel 1 is what the recorded (caller's) channel read, channel 2 what it was sent
    for before_or_after in ((0.5, pause_from - 0.5), (pause_to + 0.5, length - 0.5)):
        assert heard(channel_samples(wav, 0, *before_or_after)) == {CALLER_HZ}
        assert heard(channel_samples(wav, 1, *before_or_after)) == {AGENT_HZ}
        assert min(peak(channel_samples(wav, c, *before_or_after)) for c in (0, 1)) > AUDIBLE_PEAK
    for channel in (0, 1):
        inside = channel_samples(wav, channel, pause_from + 0.3, pause_to - 0.3)
        assert len(inside) > 8000 and peak(inside) <= SILENCE_PEAK, (channel, peak(inside))


async def test_api_refuses_traversal_unknown_ids_and_missing_token(
    asterisk: AsteriskInstance, controller_config_file: Path,
) -> None:
    config = configured(controller_config_file, recording_toml(asterisk))
    api = Api(config)
    async with running_controller(config):
        for path in ("/api/v1/recordings", "/api/v1/recordings/known-looking",
                     "/api/v1/recordings/known-looking/audio"):
            for token in (None, "wrong"):
                status, body = await api.request("GET", path, token=token)
                assert status == 401 and "token" in body["error"], (path, token)
        status, _ = await api.request("POST", "/api/v1/recordings/x/pause", token=None)
        assert status == 401
        for bad in ("..%2F..%2Fetc%2Fpasswd", "a..b", "-x", "%2E%2E%2Fx"):
            for suffix in ("", "/audio"):
                status, body = await api.request("GET", f"/api/v1/recordings/{bad}{suffix}")
                assert status == 400 and "invalid call id" in body["error"], (bad, status, body)
        for normalised in ("..", "../../etc/passwd", "%2E%2E"):  # the URL resolves '..' itself
            status, _ = await api.request("GET", f"/api/v1/recordings/{normalised}/audio")
            assert status in (401, 404), normalised  # never a file, never a 200
        for path in ("/api/v1/recordings/no-such-call", "/api/v1/recordings/no-such-call/audio"):
            status, body = await api.request("GET", path)
            assert status == 404 and "no recording" in body["error"], path
        status, body = await api.request("POST", "/api/v1/recordings/no-such-call/pause")
        assert status == 404 and "not being recorded" in body["error"]


@pytest.mark.parametrize("fault", ["root_unusable", "asterisk_cannot_write"])
async def test_recording_fault_leaves_call_up_counts_failure_harms_nothing(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool,
    tones: dict[str, Path], captured_log: io.StringIO, tmp_path: Path, fault: str,
) -> None:
    if fault == "root_unusable":
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("a file where the recordings' parent directory should be")
        toml = recording_toml(asterisk, root=blocker / "recordings")
    else:  # the controller's checks pass, but Asterisk's path leads nowhere in its chroot
        toml = recording_toml(asterisk, asterisk_root="/nonexistent/recordings")
    config = configured(controller_config_file, toml)
    before = tree_digest(asterisk.monitor_dir)
    api = Api(config)
    agent_phone(sipp, asterisk, tones)
    async with running_controller(config) as running, agent_logged_in(api):
        caller = call(sipp, tones, hold_ms=5000)
        call_id = await answered_call_id(running)
        stats = await asyncio.to_thread(caller.wait, 40)
        assert stats.successful == 1  # the call went on to its normal end
        await wait_for(lambda: _failed_metric(api), 20, "the failed recording to be counted")
        assert await recordings_metric(api, "saved") == 0.0
        status, body = await api.request("GET", f"/api/v1/recordings/{call_id}")
        listed = await api.request("GET", "/api/v1/recordings")
    if fault == "root_unusable":
        assert status == 404  # nothing started: no row
        [event] = log_events(captured_log, "recording.start_failed")
        assert event["call_id"] == call_id and event["reason"] == "storage"
    else:
        assert status == 200 and body["status"] == "failed"
        assert "Asterisk wrote no recording" in body["error"]
        [event] = log_events(captured_log, "recording.finalize_failed")
        assert event["call_id"] == call_id
    assert listed == (200, {"recordings": []})
    assert tree_digest(asterisk.monitor_dir) == before  # earlier recordings untouched


async def _failed_metric(api: Api) -> bool:
    return await recordings_metric(api, "failed") == 1.0
