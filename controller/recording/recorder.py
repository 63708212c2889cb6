"""The recorder service: starts, mutes (PCI pause) and finishes call recordings.

Why MixMonitor (over AMI) rather than ARI recordings: ARI can only record channels or bridges
that are in a Stasis application, while queue calls leave Stasis for the dialplan ``Queue()``
and outbound calls never enter it; MixMonitor is an audiohook on the caller's channel, so it
follows the call through the queue, the agent bridge and transfers (one file per call, consent
never repeated). ``MixMonitorMute`` silences it in place (22 has no PauseMixMonitor), which keeps
the timeline: a paused interval is silence of the same length, at the same offset.

The service talks to Asterisk only through ``MixMonitorPort``, so tests drive it with a fake and
the controller with the AMI wrapper. A failure to record (directory missing or unwritable, disk
full, Asterisk refusing) never stops the call: it is logged, counted in ``RecordingStats``,
reported to the ``on_result`` sink (the ``callctl_recordings_total`` counter) and the call goes
on unrecorded.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Literal, Protocol

from controller.logs import get_logger
from controller.metrics.snapshot import RecordingResult
from controller.recording import policy
from controller.recording.config import RecordingConfig
from controller.recording.files import RecordingFileError, RecordingFiles
from controller.recording.repository import (
    DuplicateRecording,
    NewRecording,
    RecordingRepository,
)
from controller.store.base import StoreError

log = get_logger("recording.recorder")

# Asterisk closes a MixMonitor file in its own thread after the channel hangs up (and sends no
# MixMonitorStop then: that event follows StopMixMonitor only), so a file is taken as closed
# once its size has not changed for CLOSE_SETTLE_S, waiting at most CLOSE_WAIT_S.
CLOSE_SETTLE_S = 0.3
CLOSE_WAIT_S = 5.0

MuteDirection = Literal["read", "write", "both"]
# told once per recording attempt: ("saved", file size) or ("failed", 0)
ResultSink = Callable[[RecordingResult, int], None]


def _ignore_result(_result: RecordingResult, _size: int) -> None:
    return None


class MixMonitorPort(Protocol):
    async def start_mixmonitor(self, channel: str, file: str, options: str) -> None:
        """AMI ``MixMonitor`` on ``channel`` writing ``file`` (Asterisk's path)."""

    async def mute_mixmonitor(self, channel: str, direction: MuteDirection, on: bool) -> None:
        """AMI ``MixMonitorMute`` (``State`` 1 on / 0 off)."""

    async def stop_mixmonitor(self, channel: str) -> None:
        """AMI ``StopMixMonitor``."""


@dataclass
class RecordingStats:
    """Counters the metrics collector reads at scrape time."""

    started_total: int = 0
    completed_total: int = 0
    saved_bytes_total: int = 0
    failures_total: int = 0
    failures_by_reason: Counter[str] = field(default_factory=Counter)

    def failed(self, reason: str) -> None:
        self.failures_total += 1
        self.failures_by_reason[reason] += 1


class NotRecording(LookupError):
    """The call id names no live recording."""


class AsteriskRefused(RuntimeError):
    """Asterisk did not carry out a mute or stop; the recording's state is unchanged."""


@dataclass
class _LiveRecording:
    decision: policy.RecordingDecision
    channel: str
    paused: bool = False
    consent_played: bool = False


class Recorder:
    def __init__(
        self,
        config: RecordingConfig,
        repo: RecordingRepository,
        port: MixMonitorPort,
        clock: Callable[[], datetime],
        stats: RecordingStats | None = None,
        on_result: ResultSink = _ignore_result,
    ) -> None:
        self.config = config
        self.repo = repo
        self.port = port
        self.clock = clock
        self.stats = stats or RecordingStats()
        self.on_result = on_result
        self.files = RecordingFiles(config.root)
        self._live: dict[str, _LiveRecording] = {}
        # calls whose start is under way -> the agent known so far (an agent can answer while
        # the metadata row is being written: ``set_agent`` leaves it here for ``start``)
        self._starting: dict[str, str | None] = {}

    def is_recording(self, call_id: str) -> bool:
        return call_id in self._live

    async def set_agent(self, call_id: str, agent_id: str) -> None:
        """The agent who answered; kept in the metadata if the call is (being) recorded."""
        if call_id in self._starting:
            self._starting[call_id] = agent_id
        elif call_id in self._live:
            await self.repo.set_agent(call_id, agent_id)

    async def start(
        self,
        call: policy.CallFacts,
        channel: str,
        agent_id: str | None = None,
        caller: str = "",
        callee: str = "",
    ) -> policy.RecordingDecision | None:
        """Decide and, if the policy says so, start recording; None when it could not start."""
        try:
            decision = policy.decide_recording(self.config, call)
        except policy.InvalidCallId as error:
            self._failed("call_id", error, {"call_id": call.call_id})
            return None
        if not decision.record or call.call_id in self._live or call.call_id in self._starting:
            return decision
        self._starting[call.call_id] = agent_id
        try:
            started = await self._begin(call, channel, decision, caller, callee)
        finally:
            agent_now = self._starting.pop(call.call_id)
        if not started:
            return None
        if agent_now != started.agent_id and agent_now is not None:
            await self.repo.set_agent(call.call_id, agent_now)
        return decision

    async def _begin(
        self,
        call: policy.CallFacts,
        channel: str,
        decision: policy.RecordingDecision,
        caller: str,
        callee: str,
    ) -> NewRecording | None:
        """Check the directory, write the metadata row, start MixMonitor; None on failure."""
        where = {"call_id": call.call_id, "policy": decision.policy_name}
        row = NewRecording(
            call_id=call.call_id,
            direction=call.direction,
            policy=decision.policy_name,
            stereo=decision.stereo,
            retention_days=decision.retention_days,
            path=str(decision.final_path),
            started_at=call.started_at,
            queue=call.queue,
            campaign=call.campaign,
            agent_id=self._starting[call.call_id],
            caller=caller,
            callee=callee,
        )
        try:
            await asyncio.to_thread(
                self.files.prepare, decision.final_path.parent, self.config.min_free_bytes
            )
            await self.repo.add(row)
        except DuplicateRecording:
            log.warning("recording.already_recorded", **where)  # e.g. a second queue pass
            return None
        except RecordingFileError as error:
            self._failed("storage", error, where)
            return None
        except StoreError as error:
            self._failed("store", error, where)
            return None
        try:
            file = self.config.asterisk_dir / decision.capture_path
            await self.port.start_mixmonitor(channel, str(file), decision.mixmonitor_options)
        except Exception as error:  # any port failure: the call must go on unrecorded
            await self.repo.fail(call.call_id, self.clock(), f"MixMonitor refused: {error}")
            self._failed("asterisk", error, where)
            return None
        self._live[call.call_id] = _LiveRecording(decision, channel)
        self.stats.started_total += 1
        log.info("recording.started", **where, stereo=decision.stereo)
        return row

    def _failed(self, reason: str, error: Exception, where: dict[str, str]) -> None:
        self.stats.failed(reason)
        self.on_result("failed", 0)
        log.error("recording.start_failed", **where, reason=reason, error=str(error))

    async def take_consent(self, call_id: str) -> str | None:
        """The consent announcement to play now, once per call; None when none is due."""
        live = self._live.get(call_id)
        if live is None:
            return None
        sound = policy.consent_to_play(live.decision, live.consent_played)
        if sound is not None:
            live.consent_played = True
            await self.repo.mark_consent_played(call_id)
        return sound

    def _require(self, call_id: str) -> _LiveRecording:
        live = self._live.get(call_id)
        if live is None:
            raise NotRecording(f"call {call_id} is not being recorded")
        return live

    async def pause(self, call_id: str) -> bool:
        """Silence the recording (PCI); False when it was already paused."""
        return await self._set_muted(call_id, True)

    async def resume(self, call_id: str) -> bool:
        """Unmute; False when it was not paused."""
        return await self._set_muted(call_id, False)

    async def _set_muted(self, call_id: str, muted: bool) -> bool:
        live = self._require(call_id)
        if live.paused == muted:
            return False
        try:
            await self.port.mute_mixmonitor(live.channel, "both", muted)
        except Exception as error:  # the port's failure types are the adapter's business
            raise AsteriskRefused(f"MixMonitorMute on call {call_id} failed: {error}") from error
        live.paused = muted
        at = self.clock()
        if muted:
            await self.repo.open_pause(call_id, at)
        else:
            await self.repo.close_pause(call_id, at)
        log.info("recording.paused" if muted else "recording.resumed", call_id=call_id)
        return True

    async def stop(self, call_id: str) -> None:
        """Stop recording before the call ends; ``finish`` follows on Asterisk's MixMonitorStop."""
        live = self._require(call_id)
        try:
            await self.port.stop_mixmonitor(live.channel)
        except Exception as error:
            raise AsteriskRefused(f"StopMixMonitor on call {call_id} failed: {error}") from error

    async def reconcile(self, live_channels: Mapping[str, str]) -> None:
        """After a restart: track recordings of calls still up, finish those that ended meanwhile.

        ``live_channels`` maps the call ids of live calls to their recorded channel.
        """
        for row in await self.repo.in_progress():
            final = PurePosixPath(row["path"])
            stereo = bool(row["stereo"])
            decision = policy.RecordingDecision(
                record=True,
                policy_name=row["policy"],
                stereo=stereo,
                consent_announcement=None,
                retention_days=row["retention_days"],
                final_path=final,
                capture_path=policy.capture_path(final, stereo),
                mixmonitor_options=policy.mixmonitor_options(stereo),
            )
            call_id = row["call_id"]
            self._live[call_id] = _LiveRecording(
                decision,
                live_channels.get(call_id, ""),
                paused=bool(row["paused"]),
                consent_played=bool(row["consent_played"]),
            )
            if call_id not in live_channels:
                await self.finish(call_id)

    async def channel_ended(self, channel: str) -> None:
        """The recorded channel hung up (AMI ``Hangup``) or its MixMonitor stopped
        (``MixMonitorStop``): finish its recordings once Asterisk has closed the file."""
        ended_at = self.clock()
        for call_id, live in list(self._live.items()):
            if live.channel == channel:
                await self._until_closed(live.decision.capture_path)
                await self.finish(call_id, ended_at)

    async def _until_closed(self, capture: PurePosixPath) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_WAIT_S
        size = await asyncio.to_thread(self.files.size, capture)
        while loop.time() < deadline:
            await asyncio.sleep(CLOSE_SETTLE_S)
            previous, size = size, await asyncio.to_thread(self.files.size, capture)
            if size == previous:
                return

    async def finish(self, call_id: str, ended_at: datetime | None = None) -> None:
        """Asterisk closed the file: publish the WAV and complete the metadata."""
        live = self._live.pop(call_id, None)
        if live is None:
            return
        ended_at = ended_at or self.clock()
        decision = live.decision
        try:
            facts = await asyncio.to_thread(
                self.files.finalize, decision.capture_path, decision.final_path, decision.stereo
            )
        except RecordingFileError as error:
            self.stats.failed("finalize")
            self.on_result("failed", 0)
            await self.repo.fail(call_id, ended_at, str(error))
            log.error("recording.finalize_failed", call_id=call_id, error=str(error))
            return
        await self.repo.complete(call_id, ended_at, facts.duration, facts.size, facts.sha256)
        self.stats.completed_total += 1
        self.stats.saved_bytes_total += facts.size
        self.on_result("saved", facts.size)
        log.info("recording.completed", call_id=call_id, duration=facts.duration, size=facts.size)
