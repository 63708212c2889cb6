"""Store access of nodes (table ``node_leases``): each controller's lease on its node's calls."""

from __future__ import annotations

from datetime import datetime

from controller.store.base import Database, from_iso, to_iso


class NodeLeaseRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def renew(self, node: str, until: datetime) -> None:
        """``node``'s controller is alive: its calls are its own until ``until``."""
        await self._db.execute(
            "INSERT INTO node_leases (node, lease_until) VALUES (:node, :until)"
            " ON CONFLICT (node) DO UPDATE SET lease_until = :until",
            {"node": node, "until": to_iso(until)},
        )

    async def leases(self) -> dict[str, datetime]:
        """Every node's lease: until when its controller holds its calls."""
        rows = await self._db.fetchall("SELECT node, lease_until FROM node_leases", {})
        return {row["node"]: from_iso(row["lease_until"]) for row in rows}

    async def forget(self, node: str, now: datetime) -> bool:
        """Delete ``node``'s lease if it ran out by ``now`` and no open call of the node is
        left to settle (the survivors find those through it); False if it did not."""
        deleted = await self._db.execute(
            "DELETE FROM node_leases WHERE node = :node AND lease_until <= :now AND NOT EXISTS"
            " (SELECT 1 FROM inbound_calls WHERE node = :node AND ended_at IS NULL)",
            {"node": node, "now": to_iso(now)},
        )
        return deleted > 0
