"""Schedule overrides: a supervisor opens or closes a schedule now, whatever its hours say.

Contact centers need this on days the calendar did not foresee: the office closed by snow
while agents work from home, a fire drill, an outage. The override holds until it is lifted
(``auto``: the hours decide again). It is stored (table ``schedule_overrides``), so it survives
a restart and every controller on the store sees it: each one reads the table every
``REFRESH_S`` and at once when its own API sets it. Whatever asks whether a schedule is open
(the routing of new calls, the queue gauges, the callbacks' dialing) asks ``is_open`` with the
schedule's override.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from controller.inbound.hours import Override
from controller.logs import get_logger
from controller.store.base import Database, StoreError, from_iso, to_iso

log = get_logger("inbound")

REFRESH_S = 2.0


def parse_override(text: str) -> Override | None:
    """``open``, ``closed`` or ``auto`` (None: the hours decide); ValueError naming the choices."""
    if text == "auto":
        return None
    try:
        return Override(text)
    except ValueError:
        raise ValueError(f"'{text}' is not an override (one of open, closed, auto)") from None


class ScheduleOverrides:
    """The overrides in force, by schedule name (``current`` is one live mapping: readers may
    keep it), and the store access to change them."""

    def __init__(self, store: Database, schedules: Iterable[str]) -> None:
        self._store = store
        self._schedules = frozenset(schedules)
        self._current: dict[str, Override] = {}
        self.set_at: dict[str, datetime] = {}

    @property
    def current(self) -> Mapping[str, Override]:
        return self._current

    async def set(self, schedule: str, override: Override | None, by: str = "") -> None:
        """Store ``override`` for ``schedule`` (None lifts it) and use it at once."""
        if schedule not in self._schedules:
            raise KeyError(schedule)
        now = datetime.now(UTC)
        async with self._store.transaction() as conn:
            await conn.execute(
                "DELETE FROM schedule_overrides WHERE schedule = :schedule", {"schedule": schedule}
            )
            if override is not None:
                await conn.execute(
                    "INSERT INTO schedule_overrides (schedule, state, set_by, set_at)"
                    " VALUES (:schedule, :state, :by, :at)",
                    {"schedule": schedule, "state": override.value, "by": by, "at": to_iso(now)},
                )
        self._apply({schedule: (override, now)} if override is not None else {}, {schedule})

    async def refresh(self) -> None:
        """Read the overrides in force from the store (another node may have set one)."""
        rows = await self._store.fetchall("SELECT schedule, state, set_at FROM schedule_overrides")
        found: dict[str, tuple[Override, datetime]] = {}
        for row in rows:
            if row["schedule"] not in self._schedules:
                continue  # a schedule this config does not have (renamed or removed)
            try:
                found[row["schedule"]] = (Override(row["state"]), from_iso(row["set_at"]))
            except ValueError:
                log.warning("schedule.override_unreadable", schedule=row["schedule"],
                            state=row["state"])
        self._apply(found, self._schedules)

    def _apply(self, found: Mapping[str, tuple[Override, datetime]], among: Iterable[str]) -> None:
        for schedule in among:
            before = self._current.get(schedule)
            after = found.get(schedule)
            if after is None:
                self._current.pop(schedule, None)
                self.set_at.pop(schedule, None)
            else:
                self._current[schedule], self.set_at[schedule] = after
            now = self._current.get(schedule)
            if now != before:
                log.info(
                    "schedule.override_changed",
                    schedule=schedule,
                    override=now.value if now else "auto",
                    previous=before.value if before else "auto",
                )

    async def run(self) -> None:
        """Keep ``current`` in step with the store."""
        while True:
            try:
                await self.refresh()
            except StoreError as error:  # keep the last known overrides meanwhile
                log.warning("schedule.override_refresh_failed", error=str(error))
            await asyncio.sleep(REFRESH_S)
