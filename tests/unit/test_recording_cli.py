"""``callctl recording`` end to end through ``controller.cli.main.main`` with a temp config."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.cli.main import main
from controller.config import load_config
from controller.recording.files import sha256_of
from controller.recording.repository import NewRecording, RecordingRepository
from controller.store import open_store

from .test_recording_support import tone, write_config, write_wav

RECORDING_TOML = '[recording.queues.sales]\nrecord = "all"\nretention_days = 30\n'


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Path:
    return write_config(tmp_path, RECORDING_TOML, store_url)


def seed(tmp_path: Path, call_id: str, days_ago: float, queue: str = "sales") -> Path:
    """A complete recording that ended ``days_ago`` before the real now (purge uses it)."""
    ended = datetime.now(UTC) - timedelta(days=days_ago)
    relative = f"{ended:%Y/%m/%d}/{call_id}.wav"
    path = write_wav(tmp_path / "recordings" / relative, tone(0.3))

    async def insert() -> None:
        store = await open_store(load_config(tmp_path / "controller.toml").store.url)
        try:
            repo = RecordingRepository(store)
            await repo.add(NewRecording(
                call_id=call_id, direction="inbound", policy=f"queue:{queue}", stereo=False,
                retention_days=30, path=relative, started_at=ended - timedelta(seconds=1),
                queue=queue, agent_id="agent-1",
            ))
            await repo.complete(call_id, ended, 0.3, path.stat().st_size, sha256_of(path))
        finally:
            await store.close()

    asyncio.run(insert())
    return path


def cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), "recording", *args])


def test_list_json_and_filters(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(tmp_path, "c1", days_ago=1)
    seed(tmp_path, "c2", days_ago=2, queue="support")
    assert cli(config, "list", "--queue", "sales", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["call_id"] for r in rows] == ["c1"]
    assert "path" in rows[0] and rows[0]["sha256"]
    assert cli(config, "list") == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].startswith("call_id")
    assert "c1" in table and "c2" in table


def test_list_rejects_bad_date(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli(config, "list", "--since", "last tuesday")
    assert exited.value.code == 2
    assert "not an ISO-8601 date" in capsys.readouterr().err


def test_get_writes_verified_copy(tmp_path: Path, config: Path) -> None:
    source = seed(tmp_path, "c1", days_ago=1)
    target = tmp_path / "out.wav"
    assert cli(config, "get", "c1", "-o", str(target)) == 0
    assert target.read_bytes() == source.read_bytes()
    assert cli(config, "get", "c1", "-o", str(target)) == 1  # exists, no --force


def test_get_refuses_tampered_file(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = seed(tmp_path, "c1", days_ago=1)
    source.write_bytes(source.read_bytes()[:-2] + b"\x00\x01")
    target = tmp_path / "out.wav"
    assert cli(config, "get", "c1", "-o", str(target)) == 1
    assert "sha256" in capsys.readouterr().err
    assert not target.exists()


def test_get_unknown_and_traversal_ids(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(config, "get", "nope", "-o", str(tmp_path / "o.wav")) == 1
    assert "no recording for call nope" in capsys.readouterr().err
    assert cli(config, "get", "../../etc/passwd", "-o", str(tmp_path / "o.wav")) == 2
    assert "invalid call id" in capsys.readouterr().err


def test_purge_dry_run_then_real(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = seed(tmp_path, "old", days_ago=45)
    fresh = seed(tmp_path, "fresh", days_ago=10)
    assert cli(config, "purge", "--dry-run", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dry_run"] is True and report["purged"] == ["old"]
    assert old.exists()
    assert cli(config, "purge") == 0
    assert "purged 1 recording(s)" in capsys.readouterr().out
    assert not old.exists() and fresh.exists()


def test_pause_refuses_bad_id_before_calling_api(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(config, "pause", "a/b") == 2
    assert "invalid call id" in capsys.readouterr().err


def test_pause_reports_unreachable_controller(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # port 1 on loopback: nothing listens, so the CLI must explain instead of crashing
    config.write_text(config.read_text().replace("[http]\n", "[http]\nport = 1\n"))
    assert cli(config, "resume", "c1") == 1
    assert "controller not reachable" in capsys.readouterr().err
