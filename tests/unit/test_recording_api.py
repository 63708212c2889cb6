"""``/api/v1/recordings`` handlers: token, ids not paths, sha256 on read, live pause/resume."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from controller.api import recordings
from controller.config import parse_config
from controller.recording.files import sha256_of
from controller.recording.policy import CallFacts
from controller.recording.recorder import Recorder
from controller.recording.repository import NewRecording, RecordingRepository
from controller.store import open_store

from .api_support import serving
from .test_recording_service import FakePort
from .test_recording_support import T0, FakeClock, tone, write_config, write_wav

AUTH = {"Authorization": "Bearer t0ken"}


@pytest.fixture
async def client(tmp_path: Path, store_url: str) -> AsyncIterator[TestClient]:
    toml = write_config(tmp_path, '[recording.queues.sales]\nrecord = "all"\n', store_url
                        ).read_text()
    config = parse_config(tomllib.loads(toml))
    store = await open_store(config.store.url)
    relative = "2026/03/14/c1.wav"
    path = write_wav(config.recording.root / relative, tone(0.5))
    repo = RecordingRepository(store)
    await repo.add(NewRecording(
        call_id="c1", direction="inbound", policy="queue:sales", stereo=False,
        retention_days=None, path=relative, started_at=T0, queue="sales",
    ))
    await repo.complete("c1", T0, 0.5, path.stat().st_size, sha256_of(path))
    def with_recorder(app: web.Application) -> None:
        app[recordings.RECORDER] = Recorder(config.recording, repo, FakePort(), FakeClock())

    async with serving(config, store, with_recorder, recordings.add_routes) as test_client:
        yield test_client
    await store.close()


async def test_missing_token_is_refused(client: TestClient) -> None:
    for path in ("/api/v1/recordings", "/api/v1/recordings/c1/audio"):
        response = await client.get(path)
        assert response.status == 401
    response = await client.get("/api/v1/recordings", headers={"Authorization": "Bearer no"})
    assert response.status == 401


async def test_list_and_get_metadata(client: TestClient) -> None:
    response = await client.get("/api/v1/recordings?queue=sales", headers=AUTH)
    assert response.status == 200
    [row] = (await response.json())["recordings"]
    assert row["call_id"] == "c1"
    response = await client.get("/api/v1/recordings/c1", headers=AUTH)
    assert (await response.json())["paused"] == []


async def test_bad_query_is_a_clear_400(client: TestClient) -> None:
    response = await client.get("/api/v1/recordings?since=yesterday", headers=AUTH)
    assert response.status == 400
    assert "since" in (await response.json())["error"]


async def test_audio_is_served_after_sha_check(client: TestClient, tmp_path: Path) -> None:
    response = await client.get("/api/v1/recordings/c1/audio", headers=AUTH)
    assert response.status == 200
    body = await response.read()
    assert body == (tmp_path / "recordings/2026/03/14/c1.wav").read_bytes()
    assert response.headers["Content-Type"] == "audio/wav"


async def test_tampered_audio_is_refused(client: TestClient, tmp_path: Path) -> None:
    (tmp_path / "recordings/2026/03/14/c1.wav").write_bytes(b"RIFF tampered")
    response = await client.get("/api/v1/recordings/c1/audio", headers=AUTH)
    assert response.status == 500
    assert "sha256" in (await response.json())["error"]


@pytest.mark.parametrize("call_id", ["..%2F..%2Fetc%2Fpasswd", "a%20b", "x..y"])
async def test_traversal_ids_are_refused(client: TestClient, call_id: str) -> None:
    response = await client.get(f"/api/v1/recordings/{call_id}/audio", headers=AUTH)
    assert response.status == 400
    assert "invalid call id" in (await response.json())["error"]


async def test_dot_dot_segment_matches_no_route(client: TestClient) -> None:
    response = await client.get("/api/v1/recordings/%2E%2E/audio", headers=AUTH)
    assert response.status == 404


async def test_unknown_id_is_404(client: TestClient) -> None:
    response = await client.get("/api/v1/recordings/nope/audio", headers=AUTH)
    assert response.status == 404
    assert "no recording for call nope" in (await response.json())["error"]


async def test_pause_and_resume_live_call(client: TestClient) -> None:
    recorder = client.app[recordings.RECORDER]
    facts = CallFacts(call_id="live1", direction="inbound", started_at=T0, queue="sales")
    await recorder.start(facts, "PJSIP/trunk-9")
    response = await client.post("/api/v1/recordings/live1/pause", headers=AUTH)
    assert (response.status, (await response.json())["state"]) == (200, "paused")
    response = await client.post("/api/v1/recordings/live1/resume", headers=AUTH)
    assert (await response.json())["state"] == "recording"
    response = await client.post("/api/v1/recordings/unknown/pause", headers=AUTH)
    assert response.status == 404


async def test_asterisk_refusing_mute_is_a_502(client: TestClient) -> None:
    recorder = client.app[recordings.RECORDER]
    recorder.port = FakePort(refuse_mute=True)
    facts = CallFacts(call_id="live2", direction="inbound", started_at=T0, queue="sales")
    await recorder.start(facts, "PJSIP/trunk-9")
    response = await client.post("/api/v1/recordings/live2/pause", headers=AUTH)
    assert response.status == 502
    assert "MixMonitorMute" in (await response.json())["error"]
