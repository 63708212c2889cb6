"""Store access of callbacks (table ``callbacks``), portable SQL on the ``Database`` port.

A booking is one INSERT: the partial unique index ``callbacks_one_pending`` refuses a second
pending callback of one number in one queue, on SQLite and PostgreSQL alike, so two bookings
racing (two nodes, two calls) still make one callback.

An ended callback keeps when it ended (``ended_at``): the queue's service level counts it from
the caller's first arrival to then (``waits``).

Several controllers on one store: each pending callback has one owner (``owner``, the
controller's ``node.name``), the only one that places its placeholder or dials it. The
booking controller owns it; it renews its leases (``renew``) while it lives, and every write of
a callback's state is conditional on still owning it (``save``), so a controller that lost one
(its lease ran out, another took it) changes nothing of it. A callback whose lease ran out is
taken over by whichever controller claims it first (``take_over``; on PostgreSQL a row another
claim holds is passed over, ``FOR UPDATE SKIP LOCKED``, as the dialer's lead claims).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
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
# How long a controller's pending callbacks stay its own without a renewal: after that another
# controller may take them over. Several renewals (``LEASE_RENEW_EVERY``) fit in one lease.
CALLBACK_LEASE = timedelta(seconds=30)
LEASE_RENEW_EVERY = timedelta(seconds=5)
_LAPSED = "(lease_until IS NULL OR lease_until < :now)"


@dataclass(frozen=True, slots=True)
class Takeover:
    """A pending callback this controller now owns, and who owned it before (``""``: nobody,
    a row from before owners; this controller's own name: its lease ran out unclaimed)."""

    callback: Callback
    previous_owner: str


@dataclass(frozen=True, slots=True)
class Booking:
    """The outcome of a booking: the callback that will call the number, and whether it is
    new (False: that number already had a pending callback in the queue)."""

    callback: Callback
    new: bool


@dataclass(frozen=True, slots=True)
class Listed:
    """A callback as listed, with the controller that holds it (pending) or held it last."""

    callback: Callback
    owner: str


def describe(callback: Callback, owner: str) -> dict[str, Any]:
    """A callback as the API and the CLI show it, ``owner`` the controller holding it."""
    return {
        "callback_id": callback.callback_id,
        "queue": callback.queue,
        "phone": callback.phone,
        "state": callback.state.value,
        "owner": owner,
        "attempts": callback.attempts,
        "arrived_at": callback.arrived_at.isoformat(),
        "booked_at": callback.booked_at.isoformat(),
        "not_before": callback.not_before.isoformat() if callback.not_before else None,
    }


def _row(callback: Callback, now: datetime, owner: str, call_id: str = "") -> dict[str, Any]:
    return {
        "owner": owner,
        "lease_until": to_iso(now + CALLBACK_LEASE),
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

    async def book(self, callback: Callback, call_id: str, owner: str) -> Booking:
        """Commit ``callback``, owned by ``owner``, unless its number already has a pending one
        in its queue."""
        try:
            await self._db.execute(
                "INSERT INTO callbacks (callback_id, queue, phone, call_id, arrived_at,"
                " booked_at, state, attempts, not_before, agent_id, updated_at, owner,"
                " lease_until) VALUES (:id, :queue, :phone, :call_id, :arrived_at, :booked_at,"
                " :state, :attempts, :not_before, :agent_id, :updated_at, :owner, :lease_until)",
                _row(callback, callback.booked_at, owner, call_id),
            )
        except ConstraintViolation:
            existing = await self.pending_of(callback.queue, callback.phone)
            if existing is None:  # it ended between our insert and this read: book again
                return await self.book(callback, call_id, owner)
            return Booking(existing, new=False)
        return Booking(callback, new=True)

    async def save(self, callback: Callback, now: datetime, owner: str) -> bool:
        """Store the callback's new state (the machine's transition) and renew its lease, if
        ``owner`` still owns it; False when it does not (another controller took it over)."""
        changed = await self._db.execute(
            "UPDATE callbacks SET state = :state, attempts = :attempts, not_before ="
            " :not_before, agent_id = :agent_id, updated_at = :updated_at,"
            " ended_at = :ended_at, lease_until = :lease_until"
            " WHERE callback_id = :id AND owner = :owner",
            _row(callback, now, owner),
        )
        return changed > 0

    async def renew(self, owner: str, now: datetime) -> set[str]:
        """Extend the leases of ``owner``'s pending callbacks (it is alive); their ids, which
        leave out any another controller took over meanwhile."""
        async with self._db.transaction() as conn:
            await conn.execute(
                f"UPDATE callbacks SET lease_until = :until WHERE owner = :owner"
                f" AND state IN {_PENDING_SQL}",
                {"until": to_iso(now + CALLBACK_LEASE), "owner": owner},
            )
            rows = await conn.fetchall(
                "SELECT callback_id FROM callbacks WHERE owner = :owner"
                f" AND state IN {_PENDING_SQL}",
                {"owner": owner},
            )
        return {row["callback_id"] for row in rows}

    async def take_over(self, owner: str, now: datetime) -> list[Takeover]:
        """Claim for ``owner`` the pending callbacks whose lease has run out, callers who
        arrived first first; each goes to one claimer only."""
        taken = []
        async with self._db.transaction() as conn:
            rows = await conn.fetchall(
                f"SELECT * FROM callbacks WHERE state IN {_PENDING_SQL} AND {_LAPSED}"
                " ORDER BY arrived_at",
                {"now": to_iso(now)},
            )
            for row in rows:
                # locked as it is taken (PostgreSQL: SKIP LOCKED): one another claim holds is
                # passed over. Owner and lapse are checked again: a row another claim took, or
                # its owner wrote (a write renews), since our read is not taken on a stale read
                won = await conn.execute(
                    "UPDATE callbacks SET owner = :owner, lease_until = :until"
                    " WHERE callback_id IN (SELECT callback_id FROM callbacks"
                    " WHERE callback_id = :id AND owner = :previous"
                    f" AND state IN {_PENDING_SQL} AND {_LAPSED}{conn.skip_locked})",
                    {"owner": owner, "until": to_iso(now + CALLBACK_LEASE), "now": to_iso(now),
                     "id": row["callback_id"], "previous": row["owner"]},
                )
                if won:
                    taken.append(Takeover(_callback(row), previous_owner=row["owner"]))
        return taken

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

    async def owned(self, owner: str) -> list[Callback]:
        """``owner``'s pending callbacks, callers who arrived first first."""
        rows = await self._db.fetchall(
            f"SELECT * FROM callbacks WHERE owner = :owner AND state IN {_PENDING_SQL}"
            " ORDER BY arrived_at",
            {"owner": owner},
        )
        return [_callback(row) for row in rows]

    async def listing(self, states: Sequence[State] = (), limit: int = 200) -> list[Listed]:
        """Callbacks newest first, optionally only those in ``states``."""
        where = ""
        if states:
            where = f" WHERE state IN {_states_sql(states)}"
        rows = await self._db.fetchall(
            f"SELECT * FROM callbacks{where} ORDER BY booked_at DESC LIMIT :limit",
            {"limit": limit},
        )
        return [Listed(_callback(row), row["owner"]) for row in rows]

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
