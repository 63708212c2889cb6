"""Store access of nodes (table ``node_leases``): each controller's lease on its node's calls."""

from __future__ import annotations

from datetime import datetime

from controller.store.base import Database, to_iso


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
