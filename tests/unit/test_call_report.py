"""The inbound call report on a real store (SQLite and PostgreSQL): ``list_calls`` with its
filters and computed seconds, ``/api/v1/calls`` (token, bad query) and ``callctl queue
calls``."""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from controller.api import calls
from controller.cli.main import main
from controller.config import parse_config
from controller.inbound.repository import CallFilter, InboundCallRecord, InboundCallRepository
from controller.store import open_store
from controller.store.base import Database

from .api_support import serving
from .test_recording_support import write_config

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
AUTH = {"Authorization": "Bearer t0ken"}


def at(seconds: float) -> datetime:
    return NOON + timedelta(seconds=seconds)


def record(call_id: str, arrived: float, queue: str, **fields: object) -> InboundCallRecord:
    return InboundCallRecord(call_id, f"PJSIP/trunk-{call_id}", "5000", "+15550199", at(arrived),
                             queue, **fields)  # type: ignore[arg-type]


async def store_calls(store: Database) -> None:
    """Three calls of support, one of sales: answered by 1001 (disposed), abandoned, answered
    by 1002 and still talking, overflowed."""
    repo = InboundCallRepository(store)
    await repo.save_ended(record("c1", 0, "support", queued_at=at(1), answered_at=at(21),
                                 ended_at=at(201), outcome="answered", agent_id="1001"))
    await repo.record_disposition("c1", "resolved", "1001", at(205))
    await repo.save_ended(record("c2", 60, "support", queued_at=at(61), ended_at=at(91),
                                 outcome="abandoned"))
    await repo.set_answered(record("c3", 120, "support", queued_at=at(120),
                                   answered_at=at(125), agent_id="1002"))
    await repo.save_ended(record("c4", 180, "sales", queued_at=at(180), ended_at=at(240),
                                 outcome="overflowed", rule="sales-nobody",
                                 destination="announcement:vm-nobodyavail"))


@pytest.fixture
async def db(store: Database) -> Database:
    await store_calls(store)
    return store


async def test_the_report_lists_calls_newest_first_with_their_seconds(db: Database) -> None:
    repo = InboundCallRepository(db)
    rows = await repo.list_calls(CallFilter())
    assert [row["call_id"] for row in rows] == ["c4", "c3", "c2", "c1"]
    seconds = {row["call_id"]: (row["wait_seconds"], row["talk_seconds"]) for row in rows}
    # waited to the answer, or to the end; talked from the answer to the end
    assert seconds == {"c1": (20.0, 180.0), "c2": (30.0, None), "c3": (5.0, None),
                       "c4": (60.0, None)}
    [first] = [row for row in rows if row["call_id"] == "c1"]
    assert (first["disposition"], first["disposed_by"], first["agent_id"]) == (
        "resolved", "1001", "1001")
    assert (rows[0]["rule"], rows[0]["outcome"]) == ("sales-nobody", "overflowed")


@pytest.mark.parametrize(("where", "expected"), [
    (CallFilter(queue="support"), ["c3", "c2", "c1"]),
    (CallFilter(agent_id="1002"), ["c3"]),
    (CallFilter(outcome="answered"), ["c1"]),  # c3 has no outcome until it ends
    (CallFilter(since=at(60), until=at(180)), ["c3", "c2"]),
    (CallFilter(queue="support", limit=2), ["c3", "c2"]),
    (CallFilter(queue="nobody"), []),
])
async def test_the_report_filters_by_queue_agent_outcome_and_arrival(
    db: Database, where: CallFilter, expected: list[str],
) -> None:
    rows = await InboundCallRepository(db).list_calls(where)
    assert [row["call_id"] for row in rows] == expected


@pytest.fixture
async def client(tmp_path: Path, store_url: str) -> AsyncIterator[TestClient]:
    config = parse_config(tomllib.loads(write_config(tmp_path, "", store_url).read_text()))
    store = await open_store(config.store.url)
    await store_calls(store)
    async with serving(config, store, calls.add_routes) as test_client:
        yield test_client
    await store.close()


async def test_the_api_needs_the_token_and_names_a_bad_parameter(client: TestClient) -> None:
    assert (await client.get("/api/v1/calls")).status == 401
    response = await client.get("/api/v1/calls?queue=support&since=2026-03-02T12:01",
                                headers=AUTH)
    assert response.status == 200
    assert [row["call_id"] for row in (await response.json())["calls"]] == ["c3", "c2"]
    for query, name in (("since=noon", "since"), ("until=x", "until"), ("limit=0", "limit"),
                        ("outcome=lost", "outcome")):
        response = await client.get(f"/api/v1/calls?{query}", headers=AUTH)
        assert response.status == 400
        assert f"query parameter {name}" in (await response.json())["error"]


def test_the_cli_prints_the_report_and_refuses_a_bad_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config_file = write_config(tmp_path)

    async def seed() -> None:
        store = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
        try:
            await store_calls(store)
        finally:
            await store.close()

    asyncio.run(seed())
    assert main(["--config", str(config_file), "queue", "calls", "--agent", "1001"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["call_id", "arrived_at", "caller", "did", "queue", "outcome",
                              "agent_id", "wait_seconds", "talk_seconds", "disposition", "rule"]
    assert row.split()[0] == "c1" and row.split()[-1] == "resolved"
    assert main(["--config", str(config_file), "queue", "calls", "--json",
                 "--since", "2026-03-02T12:03"]) == 0
    assert [r["call_id"] for r in json.loads(capsys.readouterr().out)] == ["c4"]
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(config_file), "queue", "calls", "--limit", "0"])
    assert exit_info.value.code == 2
    assert "--limit: an integer from 1 to 100000, not '0'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(config_file), "queue", "calls", "--outcome", "lost"])
    assert exit_info.value.code == 2
    assert "--outcome: invalid choice: 'lost'" in capsys.readouterr().err
