"""The store's one timestamp shape: lossless, fixed width, and older millisecond rows migrated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from controller.store import open_store
from controller.store.base import from_iso, from_iso_or_none, to_iso


def test_timestamp_text_keeps_every_microsecond_and_sorts_as_time() -> None:
    moment = datetime(2026, 3, 14, 9, 30, 2, 123456, tzinfo=UTC)
    assert to_iso(moment) == "2026-03-14T09:30:02.123456+00:00"
    assert from_iso(to_iso(moment)) == moment
    whole_second = moment.replace(microsecond=0)
    assert to_iso(whole_second) == "2026-03-14T09:30:02.000000+00:00"  # fixed width
    instants = [moment + timedelta(microseconds=n) for n in (-1000, 1, 0, 999, -1)]
    assert sorted(instants, key=to_iso) == sorted(instants)
    assert to_iso(moment.astimezone(timezone(timedelta(hours=1)))) == to_iso(moment)
    assert from_iso_or_none("") is None and from_iso_or_none(None) is None
    with pytest.raises(ValueError, match="timezone-aware"):
        to_iso(datetime(2026, 3, 14, 9, 30))


async def test_millisecond_timestamps_of_older_stores_get_the_one_shape(store_url: str) -> None:
    store = await open_store(store_url)
    await store.execute(
        "INSERT INTO agents (agent_id, interface, updated_at)"
        " VALUES ('a1', 'PJSIP/a1', '2026-03-14T09:30:02.123+00:00')"
    )
    for call_id, written in (("old", "2026-03-14T09:30:02.123+00:00"),
                             ("new", "2026-03-14T09:30:02.123400+00:00")):
        await store.execute(
            "INSERT INTO recordings (call_id, direction, policy, status, path, started_at)"
            " VALUES (:id, 'inbound', 'all', 'complete', 'x.wav', :at)",
            {"id": call_id, "at": written},
        )
    # as if the store had been written before the microsecond migrations existed
    await store.execute("DELETE FROM schema_migrations WHERE version IN (2, 201)")
    await store.close()

    store = await open_store(store_url)
    agent = await store.fetchone("SELECT updated_at FROM agents")
    started = {r["call_id"]: r["started_at"]
               for r in await store.fetchall("SELECT call_id, started_at FROM recordings")}
    await store.close()
    assert agent is not None and agent["updated_at"] == "2026-03-14T09:30:02.123000+00:00"
    assert started == {"old": "2026-03-14T09:30:02.123000+00:00",
                       "new": "2026-03-14T09:30:02.123400+00:00"}
