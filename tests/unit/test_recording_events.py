"""Recorder behaviour driven by call events: agent known mid-start, end on hangup, result sink."""

from __future__ import annotations

import asyncio
from pathlib import Path

from controller.recording.recorder import Recorder
from controller.recording.repository import RecordingRepository
from controller.store.base import Database

from .test_recording_service import (  # noqa: F401  (db is a fixture)
    FakePort,
    asterisk_writes,
    call,
    db,
    recording_config,
)
from .test_recording_support import FakeClock, tone

CHANNEL = "PJSIP/trunk-0001"


class SlowPort(FakePort):
    """Lets the test act while MixMonitor is being started."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def start_mixmonitor(self, channel: str, file: str, options: str) -> None:
        self.started.set()
        await self.release.wait()
        await super().start_mixmonitor(channel, file, options)


async def test_agent_answering_while_start_is_under_way_is_kept(
    tmp_path: Path, db: Database  # noqa: F811
) -> None:
    port = SlowPort()
    recorder = Recorder(recording_config(tmp_path), RecordingRepository(db), port, FakeClock())
    starting = asyncio.create_task(recorder.start(call("c1"), CHANNEL))
    await port.started.wait()
    await recorder.set_agent("c1", "1001")  # AgentConnect arrives before MixMonitor answers
    port.release.set()
    assert await starting is not None
    stored = await recorder.repo.get("c1")
    assert stored is not None and stored["agent_id"] == "1001"


async def test_hangup_of_recorded_channel_finishes_and_reports_saved(
    tmp_path: Path, db: Database  # noqa: F811
) -> None:
    config, port, results = recording_config(tmp_path), FakePort(), []
    recorder = Recorder(config, RecordingRepository(db), port, FakeClock(),
                        on_result=lambda result, size: results.append((result, size)))
    await recorder.start(call("c1"), CHANNEL)
    [(_, _, file, _)] = port.calls
    asterisk_writes(config, file, tone(1.0))
    await recorder.channel_ended("PJSIP/1001-0002")  # the agent's leg: not recorded
    assert recorder.is_recording("c1") and results == []
    await recorder.channel_ended(CHANNEL)
    stored = await recorder.repo.get("c1")
    assert stored is not None and stored["status"] == "complete"
    assert results == [("saved", stored["size_bytes"])]


async def test_start_failure_is_reported_failed(
    tmp_path: Path, db: Database  # noqa: F811
) -> None:
    results: list[tuple[str, int]] = []
    recorder = Recorder(recording_config(tmp_path), RecordingRepository(db),
                        FakePort(refuse=True), FakeClock(),
                        on_result=lambda result, size: results.append((result, size)))
    assert await recorder.start(call("c1"), CHANNEL) is None
    assert results == [("failed", 0)]
