"""Recording metadata, the recorder service (with a fake MixMonitor port) and retention purge."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path, PurePosixPath

import pytest

from controller.recording import audio
from controller.recording.config import RecordingConfig, RecordingPolicy
from controller.recording.files import sha256_of
from controller.recording.policy import CallFacts
from controller.recording.recorder import AsteriskRefused, NotRecording, Recorder
from controller.recording.repository import (
    NewRecording,
    RecordingFilter,
    RecordingRepository,
)
from controller.recording.retention import purge_expired
from controller.store.base import Database

from .test_recording_support import T0, FakeClock, silence, tone, write_wav


class FakePort:
    """Records what the recorder asked Asterisk; optionally refuses to start."""

    def __init__(self, refuse: bool = False, refuse_mute: bool = False) -> None:
        self.refuse = refuse
        self.refuse_mute = refuse_mute
        self.calls: list[tuple[str, ...]] = []

    async def start_mixmonitor(self, channel: str, file: str, options: str) -> None:
        if self.refuse:
            raise RuntimeError("No such channel")
        self.calls.append(("start", channel, file, options))

    async def mute_mixmonitor(self, channel: str, direction: str, on: bool) -> None:
        if self.refuse_mute:
            raise RuntimeError("No MixMonitor on channel")
        self.calls.append(("mute", channel, direction, str(on)))

    async def stop_mixmonitor(self, channel: str) -> None:
        self.calls.append(("stop", channel))


@pytest.fixture
def db(store: Database) -> Database:
    """The recording tests' store, on each backend (``store`` in tests/conftest.py)."""
    return store


def recording_config(tmp_path: Path, **kw: object) -> RecordingConfig:
    return RecordingConfig.model_validate({
        "root": tmp_path / "recordings",
        "asterisk_root": "/var/spool/asterisk/rec",
        "min_free_bytes": 0,
        "queues": {
            "sales": RecordingPolicy(
                record="all", consent_announcement="custom/consent", retention_days=30
            ),
            "qa": RecordingPolicy(record="all", channels="stereo", retention_days=30),
        },
        **kw,
    })


def call(call_id: str, queue: str = "sales") -> CallFacts:
    return CallFacts(call_id=call_id, direction="inbound", started_at=T0, queue=queue)


def asterisk_writes(config: RecordingConfig, asterisk_file: str, samples: list[int]) -> None:
    """Play Asterisk: write the capture where the controller sees Asterisk's path."""
    relative = PurePosixPath(asterisk_file).relative_to(config.asterisk_dir)
    write_wav(config.root / relative, samples)


async def test_full_recording_with_pci_pause(tmp_path: Path, db: Database) -> None:
    config, port, clock = recording_config(tmp_path), FakePort(), FakeClock()
    repo = RecordingRepository(db)
    recorder = Recorder(config, repo, port, clock)
    decision = await recorder.start(call("c1"), "PJSIP/trunk-0001", caller="+15550100")
    assert decision is not None and decision.record
    [(_, channel, file, options)] = port.calls
    assert (channel, options) == ("PJSIP/trunk-0001", "b")
    assert file == "/var/spool/asterisk/rec/2026/03/14/c1.partial.wav"
    assert await repo.list_complete(RecordingFilter()) == []  # not listed while recording

    assert await recorder.take_consent("c1") == "custom/consent"
    assert await recorder.take_consent("c1") is None  # a transfer does not replay it

    clock.now = T0 + timedelta(seconds=2)
    assert await recorder.pause("c1") is True
    assert await recorder.pause("c1") is False
    clock.now = T0 + timedelta(seconds=5)
    assert await recorder.resume("c1") is True
    assert port.calls[1:] == [
        ("mute", "PJSIP/trunk-0001", "both", "True"),
        ("mute", "PJSIP/trunk-0001", "both", "False"),
    ]
    # Asterisk's MixMonitorMute writes silence for the muted interval
    asterisk_writes(config, file, tone(2.0) + silence(3.0) + tone(2.0))
    clock.now = T0 + timedelta(seconds=7)
    await recorder.finish("c1")

    [row] = await repo.list_complete(RecordingFilter(queue="sales"))
    stored = await repo.get("c1")
    assert stored is not None
    assert row["duration_seconds"] == pytest.approx(7.0)
    assert stored["consent_played"] is True
    assert stored["caller"] == "+15550100"
    assert stored["paused"] == [
        {"started_at": "2026-03-14T09:30:02.000000+00:00",
         "ended_at": "2026-03-14T09:30:05.000000+00:00"}
    ]
    final = config.root / stored["path"]
    assert stored["sha256"] == sha256_of(final)
    assert audio.is_silent(final, 2.0, 5.0)
    assert recorder.stats.completed_total == 1
    with pytest.raises(NotRecording):
        await recorder.pause("c1")


async def test_unrecorded_policy_starts_nothing(tmp_path: Path, db: Database) -> None:
    port = FakePort()
    recorder = Recorder(recording_config(tmp_path), RecordingRepository(db), port, FakeClock())
    decision = await recorder.start(call("c2", queue="none-configured"), "PJSIP/x-1")
    assert decision is not None and not decision.record
    assert port.calls == []
    assert await RecordingRepository(db).get("c2") is None


async def test_unwritable_root_counts_failure_and_call_goes_on(
    tmp_path: Path, db: Database
) -> None:
    (tmp_path / "recordings").write_text("a file where the directory should be")
    port = FakePort()
    recorder = Recorder(recording_config(tmp_path), RecordingRepository(db), port, FakeClock())
    assert await recorder.start(call("c3"), "PJSIP/x-1") is None
    assert port.calls == []
    assert recorder.stats.failures_total == 1
    assert recorder.stats.failures_by_reason["storage"] == 1
    assert not recorder.is_recording("c3")


async def test_second_start_of_a_recorded_call_is_ignored(
    tmp_path: Path, db: Database
) -> None:
    config, repo, port = recording_config(tmp_path), RecordingRepository(db), FakePort()
    await Recorder(config, repo, FakePort(), FakeClock()).start(call("c9"), "PJSIP/x-1")
    restarted = Recorder(config, repo, port, FakeClock())
    assert await restarted.start(call("c9"), "PJSIP/x-1") is None
    assert port.calls == []
    assert restarted.stats.failures_total == 0


async def test_unsafe_call_id_is_not_recorded(tmp_path: Path, db: Database) -> None:
    port = FakePort()
    recorder = Recorder(recording_config(tmp_path), RecordingRepository(db), port, FakeClock())
    assert await recorder.start(call("../evil"), "PJSIP/x-1") is None
    assert port.calls == []
    assert recorder.stats.failures_by_reason["call_id"] == 1


async def test_disk_full_counts_failure(tmp_path: Path, db: Database) -> None:
    config = recording_config(tmp_path).model_copy(update={"min_free_bytes": 1 << 62})
    recorder = Recorder(config, RecordingRepository(db), FakePort(), FakeClock())
    assert await recorder.start(call("c4"), "PJSIP/x-1") is None
    assert recorder.stats.failures_total == 1


async def test_asterisk_refusal_marks_row_failed(tmp_path: Path, db: Database) -> None:
    repo = RecordingRepository(db)
    recorder = Recorder(recording_config(tmp_path), repo, FakePort(refuse=True), FakeClock())
    assert await recorder.start(call("c5"), "PJSIP/x-1") is None
    stored = await repo.get("c5")
    assert stored is not None and stored["status"] == "failed"
    assert "No such channel" in stored["error"]
    assert recorder.stats.failures_by_reason["asterisk"] == 1


async def test_missing_capture_at_finish_is_failed_not_listed(
    tmp_path: Path, db: Database
) -> None:
    repo = RecordingRepository(db)
    recorder = Recorder(recording_config(tmp_path), repo, FakePort(), FakeClock())
    await recorder.start(call("c6", queue="qa"), "PJSIP/x-1")
    await recorder.finish("c6")
    stored = await repo.get("c6")
    assert stored is not None and stored["status"] == "failed"
    assert await repo.list_complete(RecordingFilter()) == []
    assert recorder.stats.failures_by_reason["finalize"] == 1


async def test_failed_mute_leaves_state_and_store_unchanged(
    tmp_path: Path, db: Database
) -> None:
    repo = RecordingRepository(db)
    recorder = Recorder(recording_config(tmp_path), repo, FakePort(refuse_mute=True), FakeClock())
    await recorder.start(call("c7"), "PJSIP/x-1")
    with pytest.raises(AsteriskRefused, match="MixMonitorMute"):
        await recorder.pause("c7")
    stored = await repo.get("c7")
    assert stored is not None and stored["paused"] == []


async def test_stop_asks_asterisk(tmp_path: Path, db: Database) -> None:
    port = FakePort()
    recorder = Recorder(recording_config(tmp_path), RecordingRepository(db), port, FakeClock())
    await recorder.start(call("c8"), "PJSIP/x-8")
    await recorder.stop("c8")
    assert port.calls[-1] == ("stop", "PJSIP/x-8")


async def test_restart_reconciles_live_and_ended_calls(
    tmp_path: Path, db: Database
) -> None:
    config, repo, clock = recording_config(tmp_path), RecordingRepository(db), FakeClock()
    before = Recorder(config, repo, FakePort(), clock)
    await before.start(call("up"), "PJSIP/x-1")
    await before.start(call("ended", queue="qa"), "PJSIP/x-2")
    await before.take_consent("up")
    await before.pause("up")
    # Asterisk finished the stereo capture of "ended" while the controller was down
    (config.root / "2026/03/14/ended.partial.raw").write_bytes(b"\x01\x00\x02\x00" * 8000)

    after_port = FakePort()
    after = Recorder(config, repo, after_port, clock)
    await after.reconcile({"up": "PJSIP/x-1"})
    ended = await repo.get("ended")
    assert ended is not None and ended["status"] == "complete"
    assert ended["duration_seconds"] == pytest.approx(1.0)
    assert after.is_recording("up") and not after.is_recording("ended")
    assert await after.take_consent("up") is None
    assert await after.pause("up") is False  # the open pause survived the restart
    assert await after.resume("up") is True
    assert after_port.calls == [("mute", "PJSIP/x-1", "both", "False")]


async def seed(
    repo: RecordingRepository, root: Path, call_id: str, ended_days_ago: float,
    queue: str = "sales", retention: int | None = 30,
) -> Path:
    started = T0 - timedelta(days=ended_days_ago, minutes=5)
    relative = f"{started:%Y/%m/%d}/{call_id}.wav"
    path = write_wav(root / relative, tone(0.2))
    await repo.add(NewRecording(
        call_id=call_id, direction="inbound", policy=f"queue:{queue}", stereo=False,
        retention_days=retention, path=relative, started_at=started, queue=queue,
    ))
    await repo.complete(
        call_id, T0 - timedelta(days=ended_days_ago), 0.2, path.stat().st_size, sha256_of(path)
    )
    return path


async def test_purge_deletes_only_expired(tmp_path: Path, db: Database) -> None:
    config, repo = recording_config(tmp_path), RecordingRepository(db)
    old = await seed(repo, config.root, "old", ended_days_ago=31)
    fresh = await seed(repo, config.root, "fresh", ended_days_ago=29)
    removed_policy = await seed(repo, config.root, "gone", 8, queue="closed", retention=7)
    report = await purge_expired(repo, config, T0)
    assert sorted(report.purged) == ["gone", "old"]
    assert not old.exists() and not removed_policy.exists()
    assert fresh.exists()
    stored = await repo.get("old")
    assert stored is not None and stored["status"] == "purged"
    assert [r["call_id"] for r in await repo.list_complete(RecordingFilter())] == ["fresh"]
    assert (await purge_expired(repo, config, T0)).purged == []  # idempotent


async def test_purge_dry_run_removes_nothing(tmp_path: Path, db: Database) -> None:
    config, repo = recording_config(tmp_path), RecordingRepository(db)
    old = await seed(repo, config.root, "old", ended_days_ago=40)
    report = await purge_expired(repo, config, T0, dry_run=True)
    assert report.purged == ["old"]
    assert old.exists()
    stored = await repo.get("old")
    assert stored is not None and stored["status"] == "complete"


async def test_purge_marks_row_when_file_already_gone(tmp_path: Path, db: Database) -> None:
    config, repo = recording_config(tmp_path), RecordingRepository(db)
    (await seed(repo, config.root, "lost", ended_days_ago=40)).unlink()
    report = await purge_expired(repo, config, T0)
    assert report.missing_files == ["lost"]
    stored = await repo.get("lost")
    assert stored is not None and stored["status"] == "purged"


async def test_list_filters(tmp_path: Path, db: Database) -> None:
    config, repo = recording_config(tmp_path), RecordingRepository(db)
    await seed(repo, config.root, "a", ended_days_ago=3)
    await seed(repo, config.root, "b", ended_days_ago=1, queue="qa")
    await repo.set_agent("b", "agent-7")
    by_queue = await repo.list_complete(RecordingFilter(queue="qa"))
    assert [r["call_id"] for r in by_queue] == ["b"]
    by_agent = await repo.list_complete(RecordingFilter(agent_id="agent-7"))
    assert [r["call_id"] for r in by_agent] == ["b"]
    since = await repo.list_complete(RecordingFilter(since=T0 - timedelta(days=2)))
    assert [r["call_id"] for r in since] == ["b"]
    until = await repo.list_complete(RecordingFilter(until=T0 - timedelta(days=2)))
    assert [r["call_id"] for r in until] == ["a"]
