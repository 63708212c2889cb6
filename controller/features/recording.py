"""Recording: the recorder (started by the inbound router and the dialer), its retention purge,
and ``/api/v1/recordings``."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from controller.api import recordings
from controller.asterisk.events import AmiEvent, Hangup, MixMonitorStop
from controller.features.core import Core
from controller.recording.recorder import Recorder
from controller.recording.repository import RecordingRepository
from controller.recording.retention import run_daily
from controller.tasks import TaskSet


def install(app: web.Application, core: Core) -> Recorder:
    config = core.config.recording
    recorder = Recorder(
        config,
        RecordingRepository(core.store),
        core.ami,
        lambda: datetime.now(UTC),
        on_result=core.metrics.recording,
    )
    tasks = TaskSet("recording")

    def on_ami_event(event: AmiEvent) -> None:
        # the recorded channel hung up or its MixMonitor stopped: finish its files
        if isinstance(event, MixMonitorStop | Hangup):
            tasks.spawn(recorder.channel_ended(event.channel))

    core.sync.add_listener(on_ami_event)
    core.supervise(
        "recording-purge",
        lambda: run_daily(recorder.repo, config, lambda: datetime.now(UTC)),
    )
    app[recordings.RECORDER] = recorder
    recordings.add_routes(app)
    return recorder
