"""Recording metadata in the store: one row per recorded call and its PCI pause intervals.

A row is written when recording starts (status ``recording``), so a crash leaves a trace; it
becomes ``complete`` (and is listed) only when the finished file's size and sha256 are known.
Timestamps are the store's one text shape (``store.base.to_iso``), so text order is time order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.store.base import Database, Row, listing_filter, to_iso

RECORDING = "recording"
COMPLETE = "complete"
FAILED = "failed"
PURGED = "purged"


@dataclass(frozen=True)
class NewRecording:
    call_id: str
    direction: str
    policy: str
    stereo: bool
    retention_days: int | None
    path: str
    started_at: datetime
    queue: str | None = None
    campaign: str | None = None
    agent_id: str | None = None
    caller: str = ""
    callee: str = ""


@dataclass(frozen=True)
class RecordingFilter:
    queue: str | None = None
    campaign: str | None = None
    agent_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 1000


class DuplicateRecording(Exception):
    """The call already has a recording row."""


class RecordingRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, rec: NewRecording) -> None:
        async with self.db.transaction() as conn:
            existing = await conn.fetchone(
                "SELECT status FROM recordings WHERE call_id = :call_id", {"call_id": rec.call_id}
            )
            if existing is not None:
                raise DuplicateRecording(f"call {rec.call_id} already has a recording")
            await conn.execute(
                "INSERT INTO recordings (call_id, direction, queue, campaign, agent_id, caller,"
                " callee, policy, stereo, retention_days, status, path, started_at)"
                " VALUES (:call_id, :direction, :queue, :campaign, :agent_id, :caller, :callee,"
                " :policy, :stereo, :retention_days, :status, :path, :started_at)",
                {
                    "call_id": rec.call_id, "direction": rec.direction, "queue": rec.queue,
                    "campaign": rec.campaign, "agent_id": rec.agent_id, "caller": rec.caller,
                    "callee": rec.callee, "policy": rec.policy, "stereo": int(rec.stereo),
                    "retention_days": rec.retention_days, "status": RECORDING,
                    "path": rec.path, "started_at": to_iso(rec.started_at),
                },
            )

    async def set_agent(self, call_id: str, agent_id: str) -> None:
        await self.db.execute(
            "UPDATE recordings SET agent_id = :agent_id WHERE call_id = :call_id",
            {"call_id": call_id, "agent_id": agent_id},
        )

    async def mark_consent_played(self, call_id: str) -> None:
        await self.db.execute(
            "UPDATE recordings SET consent_played = 1 WHERE call_id = :call_id",
            {"call_id": call_id},
        )

    async def open_pause(self, call_id: str, at: datetime) -> None:
        await self.db.execute(
            "INSERT INTO recording_pauses (call_id, started_at) VALUES (:call_id, :at)",
            {"call_id": call_id, "at": to_iso(at)},
        )

    async def close_pause(self, call_id: str, at: datetime) -> None:
        await self.db.execute(
            "UPDATE recording_pauses SET ended_at = :at"
            " WHERE call_id = :call_id AND ended_at IS NULL",
            {"call_id": call_id, "at": to_iso(at)},
        )

    async def complete(
        self, call_id: str, ended_at: datetime, duration: float, size: int, sha256: str
    ) -> None:
        async with self.db.transaction() as conn:
            # a call that ends while paused closes its pause at the end of the call
            await conn.execute(
                "UPDATE recording_pauses SET ended_at = :at"
                " WHERE call_id = :call_id AND ended_at IS NULL",
                {"call_id": call_id, "at": to_iso(ended_at)},
            )
            await conn.execute(
                "UPDATE recordings SET status = :status, ended_at = :ended_at,"
                " duration_seconds = :duration, size_bytes = :size, sha256 = :sha256"
                " WHERE call_id = :call_id",
                {
                    "call_id": call_id, "status": COMPLETE, "ended_at": to_iso(ended_at),
                    "duration": duration, "size": size, "sha256": sha256,
                },
            )

    async def fail(self, call_id: str, ended_at: datetime, error: str) -> None:
        await self.db.execute(
            "UPDATE recordings SET status = :status, ended_at = :ended_at, error = :error"
            " WHERE call_id = :call_id",
            {"call_id": call_id, "status": FAILED, "ended_at": to_iso(ended_at), "error": error},
        )

    async def mark_purged(self, call_id: str, at: datetime) -> bool:
        """Mark a complete recording purged; False if it was not complete (nothing changed)."""
        changed = await self.db.execute(
            "UPDATE recordings SET status = :purged, purged_at = :at"
            " WHERE call_id = :call_id AND status = :complete",
            {"call_id": call_id, "purged": PURGED, "complete": COMPLETE, "at": to_iso(at)},
        )
        return changed == 1

    async def get(self, call_id: str) -> dict[str, Any] | None:
        row = await self.db.fetchone(
            "SELECT * FROM recordings WHERE call_id = :call_id", {"call_id": call_id}
        )
        if row is None:
            return None
        pauses = await self.db.fetchall(
            "SELECT started_at, ended_at FROM recording_pauses WHERE call_id = :call_id"
            " ORDER BY started_at",
            {"call_id": call_id},
        )
        return _public(row) | {"paused": [dict(p) for p in pauses]}

    async def list_complete(self, where: RecordingFilter) -> list[dict[str, Any]]:
        """Complete recordings matching the filter, newest first (started in [since, until))."""
        conditions, params = listing_filter(
            {"status": COMPLETE, "queue": where.queue, "campaign": where.campaign,
             "agent_id": where.agent_id}, "started_at", where.since, where.until)
        rows = await self.db.fetchall(
            f"SELECT * FROM recordings WHERE {conditions}"
            " ORDER BY started_at DESC, call_id LIMIT :limit",
            {**params, "limit": where.limit},
        )
        return [_public(row) for row in rows]

    async def in_progress(self) -> list[Row]:
        """Recordings still marked ``recording`` (with ``paused`` 1 if a pause is open)."""
        return await self.db.fetchall(
            "SELECT r.call_id, r.policy, r.stereo, r.retention_days, r.path, r.consent_played,"
            " (SELECT COUNT(*) FROM recording_pauses p"
            "  WHERE p.call_id = r.call_id AND p.ended_at IS NULL) AS paused"
            " FROM recordings r WHERE r.status = :status ORDER BY r.started_at",
            {"status": RECORDING},
        )

    async def complete_ended_before(self, cutoff: datetime) -> list[Row]:
        """Purge candidates: complete recordings that ended before ``cutoff``."""
        return await self.db.fetchall(
            "SELECT call_id, policy, retention_days, path, ended_at FROM recordings"
            " WHERE status = :status AND ended_at < :cutoff ORDER BY ended_at",
            {"status": COMPLETE, "cutoff": to_iso(cutoff)},
        )


def _public(row: Row) -> dict[str, Any]:
    """A row as the CLI and API show it: booleans as booleans."""
    out = dict(row)
    out["stereo"] = bool(out["stereo"])
    out["consent_played"] = bool(out["consent_played"])
    return out
