"""Store access of callbacks (table ``callbacks``), portable SQL on the ``Database`` port.

A booking is one INSERT: the partial unique index ``callbacks_one_pending`` refuses a second
pending callback of one number in one queue, on SQLite and PostgreSQL alike, so two bookings
racing (two nodes, two calls) still make one callback.

An ended callback keeps when it ended (``ended_at``): the queue's service level counts it from
the caller's first arrival to then (``waits``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.callbacks.machine import PENDING, Callback, State
from controller.inbound.repository import QueueWaits
from controller.store.base import ConstraintViolation, Database, Row, from_iso, to_iso


def _states_sql(states: Iterable[State]) -> str:
    """An SQL list of states, for ``state IN ...`` (the values are the enum's own)."""
    return "(" + ", ".join(f"'{state.value}'" for state in states) + ")"


_PENDING_SQL = _states_sql(sorted(PENDING))
# Callbacks that did not serve their caller: counted like a caller who abandoned the queue, or
# offering callbacks would raise the service level by hiding the callers never reached.
# A cancelled one is left out, like a short abandon: somebody chose to end it.
NOT_SERVED = (State.UNREACHED, State.EXPIRED)


@dataclass(frozen=True, slots=True)
class Booking:
    """The outcome of a booking: the callback that will call the number, and whether it is
    new (False: that number already had a pending callback in the queue)."""

    callback: Callback
    new: bool


def describe(callback: Callback) -> dict[str, Any]:
    """A callback as the API and the CLI show it."""
    return {
        "callback_id": callback.callback_id,
        "queue": callback.queue,
        "phone": callback.phone,
        "state": callback.state.value,
        "attempts": callback.attempts,
        "arrived_at": callback.arrived_at.isoformat(),
        "booked_at": callback.booked_at.isoformat(),
        "not_before": callback.not_before.isoformat() if callback.not_before else None,
    }


def _row(callback: Callback, now: datetime, call_id: str = "") -> dict[str, Any]:
    return {
        "id": callback.callback_id,
        "queue": callback.queue,
        "phone": callback.phone,
        "call_id": call_id,
        "arrived_at": to_iso(callback.arrived_at),
        "booked_at": to_iso(callback.booked_at),
        "state": callback.state.value,
        "attempts": callback.attempts,
        "not_before": to_iso(callback.not_before) if callback.not_before else None,
        "agent_id": callback.agent,
        "updated_at": to_iso(now),
        "ended_at": None if callback.state in PENDING else to_iso(now),
    }


def _callback(row: Row) -> Callback:
    return Callback(
        callback_id=row["callback_id"],
        queue=row["queue"],
        phone=row["phone"],
        arrived_at=from_iso(row["arrived_at"]),
        booked_at=from_iso(row["booked_at"]),
        state=State(row["state"]),
        attempts=int(row["attempts"]),
        not_before=from_iso(row["not_before"]) if row["not_before"] else None,
        agent=row["agent_id"],
    )


class CallbackRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def book(self, callback: Callback, call_id: str) -> Booking:
        """Commit ``callback``, unless its number already has a pending one in its queue."""
        try:
            await self._db.execute(
                "INSERT INTO callbacks (callback_id, queue, phone, call_id, arrived_at,"
                " booked_at, state, attempts, not_before, agent_id, updated_at) VALUES (:id,"
                " :queue, :phone, :call_id, :arrived_at, :booked_at, :state, :attempts,"
                " :not_before, :agent_id, :updated_at)",
                _row(callback, callback.booked_at, call_id),
            )
        except ConstraintViolation:
            existing = await self.pending_of(callback.queue, callback.phone)
            if existing is None:  # it ended between our insert and this read: book again
                return await self.book(callback, call_id)
            return Booking(existing, new=False)
        return Booking(callback, new=True)

    async def save(self, callback: Callback, now: datetime) -> None:
        """Store the callback's new state (the machine's transition)."""
        await self._db.execute(
            "UPDATE callbacks SET state = :state, attempts = :attempts, not_before ="
            " :not_before, agent_id = :agent_id, updated_at = :updated_at,"
            " ended_at = :ended_at WHERE callback_id = :id",
            _row(callback, now),
        )

    async def pending_of(self, queue: str, phone: str) -> Callback | None:
        row = await self._db.fetchone(
            f"SELECT * FROM callbacks WHERE queue = :q AND phone = :p AND state IN {_PENDING_SQL}",
            {"q": queue, "p": phone},
        )
        return _callback(row) if row else None

    async def get(self, callback_id: str) -> Callback | None:
        row = await self._db.fetchone(
            "SELECT * FROM callbacks WHERE callback_id = :id", {"id": callback_id}
        )
        return _callback(row) if row else None

    async def pending(self) -> list[Callback]:
        rows = await self._db.fetchall(
            f"SELECT * FROM callbacks WHERE state IN {_PENDING_SQL} ORDER BY arrived_at"
        )
        return [_callback(row) for row in rows]

    async def listing(self, states: Sequence[State] = (), limit: int = 200) -> list[Callback]:
        """Callbacks newest first, optionally only those in ``states``."""
        where = ""
        if states:
            where = f" WHERE state IN {_states_sql(states)}"
        rows = await self._db.fetchall(
            f"SELECT * FROM callbacks{where} ORDER BY booked_at DESC LIMIT :limit",
            {"limit": limit},
        )
        return [_callback(row) for row in rows]

    async def waits(self, ended_since: datetime) -> dict[str, QueueWaits]:
        """Per queue: the waits of the callbacks ended since ``ended_since``, each from its
        caller's first arrival to its end; answered ones as answered, the ones that did not
        serve their caller (``NOT_SERVED``) as abandoned."""
        rows = await self._db.fetchall(
            "SELECT queue, state, arrived_at, ended_at FROM callbacks WHERE ended_at >= :since"
            f" AND state IN {_states_sql((State.ANSWERED, *NOT_SERVED))}",
            {"since": to_iso(ended_since)},
        )
        waits: dict[str, QueueWaits] = {}
        for row in rows:
            queue = waits.setdefault(row["queue"], QueueWaits())
            waited = (from_iso(row["ended_at"]) - from_iso(row["arrived_at"])).total_seconds()
            answered = row["state"] == State.ANSWERED.value
            (queue.answered if answered else queue.abandoned).append(waited)
        return waits

    async def on_dnc(self, phone: str) -> bool:
        """Whether the number is on the global do-not-call list (the dialer's ``dnc``)."""
        row = await self._db.fetchone(
            "SELECT 1 AS hit FROM dnc WHERE phone = :p AND scope = '*'", {"p": phone}
        )
        return row is not None
