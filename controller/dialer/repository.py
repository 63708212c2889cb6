"""Store access of the dialer: campaigns, leads, attempts and do-not-call lists.

Written against the ``Database`` port with portable SQL. The runner's three needs are shaped
for crash safety and for several workers:

1. ``claim`` picks due leads, asks ``policy.may_dial`` about each, and in ONE transaction moves
   the allowed ones to ``dialing`` (a conditional ``UPDATE`` on the lead as it was read, still
   ``ready`` with the same attempts and due time, whose row count tells a worker whether it won
   the lead) and writes their attempt rows, so every originate has a committed attempt before it
   goes out. Leads refused only for now (calling hours, retry delay, re-call gap) are parked at
   their earliest time, on the same condition, so the next tick skips them. The same SQL holds
   on both stores: SQLite has one writer at a time; on PostgreSQL (READ COMMITTED) a lead
   another claim holds is passed over (``FOR UPDATE SKIP LOCKED``) and one another worker
   claimed and settled since the read fails the condition, so no lead is claimed twice and
   none on a stale read.
2. ``record_result`` closes an attempt and schedules the lead's retry (or finishes it).
   ``record_disposition`` stores what the agent said the call came to; the lead's part of it
   (finish, dial again, do-not-call) is done by whichever of the two lands second, so their
   order does not matter (the result waits in the backlog while the store is down, a key in
   wrap-up may come first).
3. ``open_attempts`` lists attempts still ``dialing`` for restart reconciliation.

The DNC lists are checked when leads are claimed, not copied into the leads at import, so a
number added to a list after the import is never dialed, and removing it makes it dialable.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from controller.config import validation_problems
from controller.dialer.leads import Lead
from controller.dialer.pacing import LiveAnswer
from controller.dialer.policy import (
    CampaignState,
    LeadSnapshot,
    RecycleRule,
    Result,
    campaign_transition,
    may_dial,
    next_attempt_at,
)
from controller.dialer.settings import (
    FIXED_AFTER_CREATE,
    CampaignSettings,
    Disposition,
    changed_keys,
)
from controller.dialer.workers import WorkerLease
from controller.store.base import Connection, Database, Row, from_iso, from_iso_or_none, to_iso

GLOBAL_DNC = "*"
# attempts counts every call a lead ever had; max_attempts counts those since its last recycle
_HAS_ATTEMPTS_LEFT = "attempts - recycled_attempts < :max"
_ATTEMPTS_MADE = "attempts - recycled_attempts AS attempts_made"
_ON_DNC = (
    "EXISTS (SELECT 1 FROM dnc WHERE dnc.phone = leads.phone"
    " AND dnc.scope IN ('*', leads.campaign))"
)
# How long a worker's open attempts and agents stay its own without a renewal (``renew_leases``):
# after that another worker settles the attempts (``lapsed_attempts``) and seats the agents
# (``dialer.workers``). Several renewals fit in one lease.
WORKER_LEASE = timedelta(seconds=30)
# Leads a batch of claims looks at, beyond the number wanted, to skip the ones policy refuses.
CLAIM_SCAN_FACTOR = 4
CLAIM_SCAN_MIN = 50


# A claim writes a lead only as it read it (still ready, the same attempts and due time): on
# PostgreSQL another worker may have claimed, dialed and settled it since the read, and policy
# was asked about the lead as it was. Taken, it was dialed again at once inside its retry delay
# (an abandon's re-call gap would break the same way) and numbered as the attempt before it:
# seen once in about 1200 attempts of the cluster campaign test.
_AS_READ = (
    "campaign = :c AND phone = :p AND state = 'ready' AND attempts = :attempts"
    " AND next_attempt_at = :due"
)


def _as_read(campaign: str, row: Row) -> dict[str, Any]:
    return {"c": campaign, "p": row["phone"], "attempts": row["attempts"],
            "due": row["next_attempt_at"]}


class DialerStoreError(Exception):
    """A dialer operation the stored data does not allow (unknown campaign, bad transition)."""


class UnknownCampaign(DialerStoreError):
    """No campaign of that name in the store."""


class StoredSettingsInvalid(DialerStoreError):
    """A campaign's stored settings no longer pass validation (stored by an older release that
    checked less): nothing dials it until its settings are replaced."""


class UnknownDisposition(DialerStoreError):
    """A request names a disposition the campaign does not have."""


@dataclass(frozen=True, slots=True)
class Campaign:
    name: str
    state: str
    settings: CampaignSettings
    settings_revision: int
    created_at: str
    updated_at: str

    def settings_report(self) -> dict[str, Any]:
        """The settings with their revision, as ``campaign settings --json`` and the API give
        them (the ``settings`` part is what an update takes back)."""
        return {
            "campaign": self.name,
            "revision": self.settings_revision,
            "settings": self.settings.model_dump(mode="json"),
        }


@dataclass(frozen=True, slots=True)
class CampaignHead:
    """What the runner reads of every campaign on every tick: enough to see that it changed."""

    state: CampaignState
    settings_revision: int


@dataclass(frozen=True, slots=True)
class SettingsUpdate:
    """The outcome of ``update_settings``: the revision now stored and the keys that changed
    (none: the same settings, nothing written)."""

    campaign: str
    revision: int
    changed: tuple[str, ...]

    def report(self) -> dict[str, Any]:
        return {"campaign": self.campaign, "revision": self.revision, "changed": list(self.changed)}


@dataclass(frozen=True, slots=True)
class DisposedLead:
    """What ``record_disposition`` did to the attempt's lead: its state now (``done``,
    ``ready`` to be dialed again at ``retry_at``), or ``pending`` while the call's result is
    not stored yet (``record_result`` does the lead's part then)."""

    state: str
    retry_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ImportCounts:
    new: int
    updated: int
    unchanged: int
    on_dnc: int


@dataclass(frozen=True, slots=True)
class RecycledLeads:
    """What ``recycle_leads`` did: leads given a fresh set of attempts (with ``dry_run``: that
    would be), and leads the rule picked but left finished, their number on a do-not-call list."""

    campaign: str
    recycled: int
    on_dnc: int
    dry_run: bool

    def report(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ClaimedAttempt:
    """A lead this worker now owns: its attempt row is committed, the originate may go out."""

    attempt_id: str
    campaign: str
    phone: str
    attempt_no: int
    name: str
    timezone: str
    custom: dict[str, str]


@dataclass(frozen=True, slots=True)
class OpenAttempt:
    attempt_id: str
    campaign: str
    phone: str
    attempt_no: int
    worker: str
    started_at: datetime
    channel: str | None


@dataclass(frozen=True, slots=True)
class AttemptTiming:
    """When an answered call was handed over for an agent (after AMD), and its talk time."""

    answered_at: datetime | None = None
    talk_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class FinishedAttempt:
    started_at: datetime
    ended_at: datetime
    answered_at: datetime | None
    talk_seconds: float | None


@dataclass(frozen=True, slots=True)
class ConnectedCall:
    """A dialer call an agent took, as the agent stats count it."""

    attempt_id: str
    agent_id: str
    campaign: str
    connected_at: datetime
    talk_ended_at: datetime | None  # None: still talking
    wrapup_seconds: float  # the campaign's agent_wrapup_seconds
    disposition: str | None
    disposed_at: datetime | None


@dataclass(frozen=True, slots=True)
class AbandonCount:
    """The live-answered calls (human or abandoned) of a window and how many were abandoned."""

    abandoned: int
    live: int

    @property
    def ratio(self) -> float | None:
        """Abandoned / live-answered; None while no call was answered live."""
        return self.abandoned / self.live if self.live else None


# the windows of the callctl_dialer_abandon_ratio gauge
METRIC_ABANDON_WINDOWS = {
    "1h": timedelta(hours=1), "24h": timedelta(hours=24), "30d": timedelta(days=30)
}


class DialerRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- campaigns -----------------------------------------------------------------------

    async def create_campaign(self, name: str, settings: CampaignSettings, now: datetime) -> None:
        async with self._db.transaction() as conn:
            if await conn.fetchone("SELECT 1 AS x FROM campaigns WHERE name = :n", {"n": name}):
                raise DialerStoreError(f"campaign {name!r} already exists")
            await conn.execute(
                "INSERT INTO campaigns (name, state, settings_json, created_at, updated_at)"
                " VALUES (:name, 'created', :settings, :now, :now)",
                {"name": name, "settings": settings.model_dump_json(), "now": to_iso(now)},
            )

    async def campaign(self, name: str, conn: Connection | None = None) -> Campaign:
        row = await (conn or self._db).fetchone(
            "SELECT * FROM campaigns WHERE name = :n", {"n": name}
        )
        if row is None:
            raise UnknownCampaign(f"no campaign named {name!r}")
        try:
            settings = CampaignSettings.model_validate_json(row["settings_json"])
        except ValidationError as error:
            problems = "; ".join(f"{where}: {what}" for where, what in validation_problems(error))
            raise StoredSettingsInvalid(
                f"campaign {name!r}: its stored settings are no longer valid ({problems})"
            ) from None
        return Campaign(
            name=row["name"],
            state=row["state"],
            settings=settings,
            settings_revision=row["settings_revision"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    async def list_campaigns(self) -> list[Row]:
        return await self._db.fetchall(
            "SELECT c.name, c.state, c.created_at, c.updated_at,"
            " (SELECT COUNT(*) FROM leads WHERE leads.campaign = c.name) AS leads,"
            " (SELECT COUNT(*) FROM leads WHERE leads.campaign = c.name"
            "  AND leads.state = 'done') AS done"
            " FROM campaigns c ORDER BY c.name"
        )

    async def campaign_heads(self) -> dict[str, CampaignHead]:
        """Each campaign's state and settings revision, by name: what the runner reads every
        tick (no lead counts, no settings)."""
        rows = await self._db.fetchall(
            "SELECT name, state, settings_revision FROM campaigns ORDER BY name"
        )
        return {
            row["name"]: CampaignHead(CampaignState(row["state"]), row["settings_revision"])
            for row in rows
        }

    async def update_settings(
        self, name: str, settings: CampaignSettings, now: datetime
    ) -> SettingsUpdate:
        """Replace a campaign's settings, running or not; the runner applies them at its next
        tick. A stopped campaign's are final, and ``FIXED_AFTER_CREATE`` keys never change."""
        async with self._db.transaction() as conn:
            found = await self.campaign(name, conn)
            if found.state == CampaignState.STOPPED:
                raise DialerStoreError(f"campaign {name!r} is stopped: its settings are final")
            changed = changed_keys(found.settings, settings)
            fixed = [key for key in changed if key in FIXED_AFTER_CREATE]
            if fixed:
                raise DialerStoreError(
                    f"campaign {name!r}: {', '.join(fixed)} cannot change (its abandon rate is"
                    " counted over the windows it was created with; other windows need a new"
                    " campaign)"
                )
            if not changed:
                return SettingsUpdate(name, found.settings_revision, ())
            await conn.execute(
                "UPDATE campaigns SET settings_json = :settings,"
                " settings_revision = settings_revision + 1, updated_at = :now WHERE name = :name",
                {"settings": settings.model_dump_json(), "now": to_iso(now), "name": name},
            )
            revision = await conn.fetchone(
                "SELECT settings_revision FROM campaigns WHERE name = :name", {"name": name}
            )
        assert revision is not None
        return SettingsUpdate(name, revision["settings_revision"], changed)

    async def change_state(self, name: str, action: str, now: datetime) -> tuple[str, str]:
        """Apply a start/pause/resume/stop action; returns ``(old state, new state)``."""
        async with self._db.transaction() as conn:
            current = (await self.campaign(name, conn)).state
            try:
                target = campaign_transition(current, action)
            except ValueError as error:
                raise DialerStoreError(f"campaign {name!r}: {error}") from None
            await conn.execute(
                "UPDATE campaigns SET state = :target, updated_at = :now"
                " WHERE name = :name AND state = :current",
                {"target": target, "now": to_iso(now), "name": name, "current": current},
            )
        return current, target

    # --- leads ---------------------------------------------------------------------------

    async def import_leads(
        self, campaign: str, leads: Sequence[Lead], now: datetime
    ) -> ImportCounts:
        """Insert new leads and merge changed ones in one transaction; call state is kept."""
        async with self._db.transaction() as conn:
            await self.campaign(campaign, conn)
            existing = {
                row["phone"]: row
                async for row in conn.iterate(
                    "SELECT phone, name, timezone, custom_json FROM leads WHERE campaign = :c",
                    {"c": campaign},
                )
            }
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            for lead in leads:
                old = existing.get(lead.phone)
                if old is None:
                    inserts.append(_lead_params(campaign, lead, now))
                    continue
                merged = Lead(
                    lead.phone, old["name"], old["timezone"], json.loads(old["custom_json"])
                )
                merged.merge(lead)
                params = _lead_params(campaign, merged, now)
                if (params["name"], params["timezone"], params["custom_json"]) != (
                    old["name"],
                    old["timezone"],
                    old["custom_json"],
                ):
                    updates.append(params)
            await conn.executemany(
                "INSERT INTO leads (campaign, phone, name, timezone, custom_json, imported_at)"
                " VALUES (:campaign, :phone, :name, :timezone, :custom_json, :now)",
                inserts,
            )
            await conn.executemany(
                "UPDATE leads SET name = :name, timezone = :timezone, custom_json = :custom_json"
                " WHERE campaign = :campaign AND phone = :phone",
                updates,
            )
            on_dnc = await self._count_on_dnc(conn, campaign, [lead.phone for lead in leads])
        return ImportCounts(
            new=len(inserts),
            updated=len(updates),
            unchanged=len(leads) - len(inserts) - len(updates),
            on_dnc=on_dnc,
        )

    async def _count_on_dnc(self, conn: Connection, campaign: str, phones: list[str]) -> int:
        listed = {
            row["phone"]
            async for row in conn.iterate(
                "SELECT phone FROM dnc WHERE scope IN ('*', :c)", {"c": campaign}
            )
        }
        return sum(1 for phone in phones if phone in listed)

    async def recycle_leads(
        self, campaign: str, rule: RecycleRule, now: datetime, *, dry_run: bool = False
    ) -> RecycledLeads:
        """Give the finished leads ``rule`` picks a fresh set of attempts, due at once (calling
        hours and the re-call gap after an abandon still hold when they are claimed), in one
        transaction; picked leads whose number is on a do-not-call list stay finished."""
        async with self._db.transaction() as conn:
            found = await self.campaign(campaign, conn)
            if found.state == CampaignState.STOPPED:
                raise DialerStoreError(
                    f"campaign {campaign!r} is stopped: recycled leads would never be dialed"
                )
            if unknown := rule.unknown_dispositions(found.settings):
                names = sorted(d.name for d in found.settings.dispositions.values())
                raise UnknownDisposition(
                    f"campaign {campaign!r} has no disposition {', '.join(unknown)}"
                    f" (its dispositions: {', '.join(names) or 'none'})"
                )
            picked, params = _recycle_filter(campaign, rule, found.settings, now)
            counts = await conn.fetchone(
                f"SELECT COUNT(*) AS picked, SUM(CASE WHEN {_ON_DNC} THEN 1 ELSE 0 END) AS on_dnc"
                f" FROM leads WHERE {picked}",
                params,
            )
            assert counts is not None
            on_dnc = counts["on_dnc"] or 0
            recycled = counts["picked"] - on_dnc
            if not dry_run:
                recycled = await conn.execute(
                    "UPDATE leads SET state = 'ready', recycled_attempts = attempts,"
                    f" recycled_at = :now, next_attempt_at = :now WHERE {picked}"
                    f" AND NOT {_ON_DNC}",
                    params,
                )
        return RecycledLeads(campaign, recycled, on_dnc, dry_run)

    async def claim(
        self, campaign: str, wanted: int, worker: str, now: datetime
    ) -> list[ClaimedAttempt]:
        """Claim up to ``wanted`` dialable leads and commit an attempt row for each.

        Nothing is claimed unless the campaign is ``running``, checked in the same transaction
        so a pause or stop from the CLI takes effect before the next originate.
        """
        claimed: list[ClaimedAttempt] = []
        token = f"{worker}:{uuid.uuid4()}"
        async with self._db.transaction() as conn:
            found = await self.campaign(campaign, conn)
            settings = found.settings
            while found.state == "running" and len(claimed) < wanted:
                rows = await conn.fetchall(
                    f"SELECT phone, name, timezone, custom_json, attempts, {_ATTEMPTS_MADE},"
                    " next_attempt_at, last_abandoned_at FROM leads"
                    " WHERE campaign = :c AND state = 'ready' AND next_attempt_at <= :now"
                    f" AND timezone IS NOT NULL AND {_HAS_ATTEMPTS_LEFT} AND NOT {_ON_DNC}"
                    " ORDER BY next_attempt_at, phone LIMIT :limit",
                    {
                        "c": campaign,
                        "now": to_iso(now),
                        "max": settings.max_attempts,
                        "limit": max(wanted * CLAIM_SCAN_FACTOR, CLAIM_SCAN_MIN),
                    },
                )
                progressed = False
                for row in rows:
                    if len(claimed) == wanted:
                        break
                    permission = may_dial(_snapshot(row), settings, now)
                    if permission.allowed:
                        attempt = await self._claim_one(conn, campaign, row, token, worker, now)
                        if attempt is not None:
                            claimed.append(attempt)
                            progressed = True
                        # else another worker's claim holds it or took it: passed over, not
                        # waited for; scanning again only after progress, so a lead held
                        # until the other claim commits is not tried in a loop meanwhile
                    elif permission.not_before is not None:
                        await self._park(conn, campaign, row, permission.not_before)
                        progressed = True
                if not progressed:
                    break
        return claimed

    async def _park(self, conn: Connection, campaign: str, row: Row, until: datetime) -> None:
        """Make a lead policy refuses for now due at ``until``, if it is still as read."""
        await conn.execute(
            f"UPDATE leads SET next_attempt_at = :at WHERE {_AS_READ}",
            {"at": to_iso(until), **_as_read(campaign, row)},
        )

    async def _claim_one(
        self, conn: Connection, campaign: str, row: Row, token: str, worker: str, now: datetime
    ) -> ClaimedAttempt | None:
        # the lead is locked as it is taken (PostgreSQL: FOR UPDATE SKIP LOCKED), so a lead
        # another worker's claim holds is passed over at once instead of waited for
        won = await conn.execute(
            "UPDATE leads SET state = 'dialing', claim_token = :token, attempts = attempts + 1"
            " WHERE campaign = :c AND phone IN (SELECT phone FROM leads"
            f" WHERE {_AS_READ}{conn.skip_locked})",
            {"token": token, **_as_read(campaign, row)},
        )
        if not won:
            return None  # another worker holds it, or took it between our read and our write
        attempt = ClaimedAttempt(
            attempt_id=str(uuid.uuid4()),
            campaign=campaign,
            phone=row["phone"],
            attempt_no=row["attempts"] + 1,
            name=row["name"],
            timezone=row["timezone"],
            custom=json.loads(row["custom_json"]),
        )
        await conn.execute(
            "INSERT INTO attempts (attempt_id, campaign, phone, attempt_no, worker, started_at,"
            " lease_until) VALUES (:id, :c, :p, :no, :worker, :now, :lease)",
            {
                "id": attempt.attempt_id,
                "c": campaign,
                "p": attempt.phone,
                "no": attempt.attempt_no,
                "worker": worker,
                "now": to_iso(now),
                "lease": to_iso(now + WORKER_LEASE),
            },
        )
        return attempt

    async def attach_channel(self, attempt_id: str, channel: str) -> None:
        """Remember the channel (uniqueid) of an attempt, for reconciliation after a restart."""
        await self._db.execute(
            "UPDATE attempts SET channel = :ch WHERE attempt_id = :id",
            {"ch": channel, "id": attempt_id},
        )

    async def record_result(
        self,
        attempt_id: str,
        result: Result,
        now: datetime,
        cause: int | None = None,
        timing: AttemptTiming | None = None,
    ) -> datetime | None:
        """Close an open attempt and schedule its lead; returns the retry time (None: finished).
        ``timing`` keeps what pacing learned from the call (see ``pacing_history``)."""
        async with self._db.transaction() as conn:
            timing = timing or AttemptTiming()
            # written before it is read: the write locks the row (PostgreSQL), so a disposition
            # written at the same time is either seen here or sees this result (never neither)
            closed = await conn.execute(
                "UPDATE attempts SET state = 'done', ended_at = :now, result = :result,"
                " cause = :cause, answered_at = :answered, talk_seconds = :talk"
                " WHERE attempt_id = :id AND state = 'dialing'",
                {
                    "now": to_iso(now),
                    "result": result.value,
                    "cause": cause,
                    "answered": to_iso(timing.answered_at) if timing.answered_at else None,
                    "talk": timing.talk_seconds,
                    "id": attempt_id,
                },
            )
            if not closed:
                raise DialerStoreError(f"no open attempt {attempt_id!r}")
            attempt = await _attempt(conn, attempt_id)
            settings = (await self.campaign(attempt["campaign"], conn)).settings
            key = {"c": attempt["campaign"], "p": attempt["phone"]}
            lead = await conn.fetchone(
                f"SELECT {_ATTEMPTS_MADE}, last_abandoned_at FROM leads"
                " WHERE campaign = :c AND phone = :p",
                key,
            )
            assert lead is not None  # attempts reference their lead
            started = from_iso(attempt["started_at"])
            retry_at = next_attempt_at(result, lead["attempts_made"], settings, now, started)
            if attempt["disposition_lead"] is not None:  # the agent's key landed first
                retry_at = await _dispose_lead(conn, attempt, lead["attempts_made"], settings, now)
            abandoned_at = to_iso(now) if result is Result.ABANDONED else lead["last_abandoned_at"]
            await conn.execute(
                "UPDATE leads SET state = :state, next_attempt_at = :next, last_result = :result,"
                " last_result_at = :now, last_abandoned_at = :abandoned, claim_token = NULL"
                " WHERE campaign = :c AND phone = :p",
                {
                    **key,
                    "state": "ready" if retry_at else "done",
                    "next": to_iso(retry_at) if retry_at else "",
                    "result": result.value,
                    "now": to_iso(now),
                    "abandoned": abandoned_at,
                },
            )
        return retry_at

    async def record_disposition(
        self, attempt_id: str, disposition: Disposition, agent_id: str, now: datetime
    ) -> DisposedLead:
        """Store the agent's disposition of an attempt and do to its lead what it says, once:
        a second one for the same attempt (a write re-run by the backlog) changes nothing."""
        retry_at = now + timedelta(minutes=disposition.retry_minutes)
        async with self._db.transaction() as conn:
            # written before it is read, as record_result does: one of the two sees the other
            marked = await conn.execute(
                "UPDATE attempts SET disposition = :name, disposition_lead = :lead,"
                " disposition_retry_at = :retry, disposed_by = :agent, disposed_at = :now"
                " WHERE attempt_id = :id AND disposition IS NULL",
                {
                    "name": disposition.name,
                    "lead": disposition.lead,
                    "retry": to_iso(retry_at),
                    "agent": agent_id,
                    "now": to_iso(now),
                    "id": attempt_id,
                },
            )
            attempt = await _attempt(conn, attempt_id)
            if attempt["state"] != "done":
                return DisposedLead("pending")  # record_result does the lead's part
            key = {"c": attempt["campaign"], "p": attempt["phone"]}
            lead = await conn.fetchone(
                f"SELECT state, {_ATTEMPTS_MADE}, next_attempt_at FROM leads"
                " WHERE campaign = :c AND phone = :p", key,
            )
            assert lead is not None  # attempts reference their lead
            if not marked:  # disposed of before: the lead is as that left it
                return DisposedLead(lead["state"], from_iso_or_none(lead["next_attempt_at"]))
            settings = (await self.campaign(attempt["campaign"], conn)).settings
            retry = await _dispose_lead(conn, attempt, lead["attempts_made"], settings, now)
            await conn.execute(
                "UPDATE leads SET state = :state, next_attempt_at = :next"
                " WHERE campaign = :c AND phone = :p",
                {**key, "state": "ready" if retry else "done",
                 "next": to_iso(retry) if retry else ""},
            )
            return DisposedLead("ready" if retry else "done", retry)

    async def release_attempt(self, attempt_id: str, now: datetime) -> None:
        """Close an open attempt that was never dialed (``not_dialed``) and give its lead the
        attempt back: the controller died between the claim's commit and the originate."""
        async with self._db.transaction() as conn:
            attempt = await _open_attempt(conn, attempt_id)
            await conn.execute(
                "UPDATE attempts SET state = 'done', ended_at = :now, result = :result"
                " WHERE attempt_id = :id",
                {"now": to_iso(now), "result": Result.NOT_DIALED.value, "id": attempt_id},
            )
            await conn.execute(
                "UPDATE leads SET state = 'ready', attempts = attempts - 1, claim_token = NULL,"
                " next_attempt_at = :now WHERE campaign = :c AND phone = :p AND state = 'dialing'",
                {"now": to_iso(now), "c": attempt["campaign"], "p": attempt["phone"]},
            )

    async def renew_leases(self, worker: str, agents: Iterable[str], now: datetime) -> None:
        """``worker`` is alive, seating ``agents`` (empty: all): its row and every open attempt
        of it are its own for another lease."""
        params = {"w": worker, "a": json.dumps(sorted(agents)), "until": to_iso(now + WORKER_LEASE)}
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE attempts SET lease_until = :until WHERE worker = :w AND state = 'dialing'",
                params,
            )
            await conn.execute(
                "INSERT INTO dialer_workers (worker, agents, lease_until) VALUES (:w, :a, :until)"
                " ON CONFLICT (worker) DO UPDATE SET agents = :a, lease_until = :until",
                params,
            )

    async def worker_leases(self) -> list[WorkerLease]:
        rows = await self._db.fetchall("SELECT * FROM dialer_workers ORDER BY worker", {})
        return [
            WorkerLease(row["worker"], tuple(json.loads(row["agents"])),
                        from_iso(row["lease_until"]))
            for row in rows
        ]

    async def forget_worker(self, worker: str, now: datetime) -> bool:
        """Delete ``worker``'s row if its lease ran out before ``now`` and it has no open attempt
        left to settle; False if it did not."""
        return await self._db.execute(
            "DELETE FROM dialer_workers WHERE worker = :w AND lease_until <= :now AND NOT EXISTS"
            " (SELECT 1 FROM attempts WHERE worker = :w AND state = 'dialing')",
            {"w": worker, "now": to_iso(now)},
        ) > 0

    async def open_attempt_counts(self) -> dict[str, int]:
        """How many attempts each worker has dialing (open, not yet settled)."""
        rows = await self._db.fetchall(
            "SELECT worker, COUNT(*) AS n FROM attempts WHERE state = 'dialing' GROUP BY worker",
            {},
        )
        return {row["worker"]: int(row["n"]) for row in rows}

    async def lapsed_attempts(self, worker: str, now: datetime) -> list[OpenAttempt]:
        """Open attempts of other workers whose lease ran out: their worker is gone."""
        rows = await self._db.fetchall(
            "SELECT * FROM attempts WHERE state = 'dialing' AND worker != :w"
            " AND lease_until IS NOT NULL AND lease_until < :now ORDER BY started_at",
            {"w": worker, "now": to_iso(now)},
        )
        return [_open_attempt_of(row) for row in rows]

    async def open_attempts(self, campaign: str | None = None) -> list[OpenAttempt]:
        where, params = "state = 'dialing'", {}
        if campaign is not None:
            where, params = where + " AND campaign = :c", {"c": campaign}
        rows = await self._db.fetchall(
            f"SELECT * FROM attempts WHERE {where} ORDER BY started_at", params
        )
        return [_open_attempt_of(row) for row in rows]

    async def status(self, campaign: str, now: datetime) -> dict[str, Any]:
        """Counts of leads by state, attempts by result, and the abandon rate per window."""
        found = await self.campaign(campaign)
        params = {"c": campaign}
        by_state = await self._db.fetchall(
            "SELECT state, COUNT(*) AS n FROM leads WHERE campaign = :c GROUP BY state", params
        )
        flags = await self._db.fetchone(
            "SELECT COUNT(*) AS total,"
            f" SUM(CASE WHEN {_ON_DNC} THEN 1 ELSE 0 END) AS on_dnc,"
            " SUM(CASE WHEN timezone IS NULL THEN 1 ELSE 0 END) AS no_timezone"
            " FROM leads WHERE campaign = :c",
            params,
        )
        by_result = await self._db.fetchall(
            "SELECT result, COUNT(*) AS n FROM attempts WHERE campaign = :c AND state = 'done'"
            " GROUP BY result",
            params,
        )
        by_disposition = await self._db.fetchall(
            "SELECT disposition, COUNT(*) AS n FROM attempts WHERE campaign = :c"
            " AND disposition IS NOT NULL GROUP BY disposition ORDER BY disposition",
            params,
        )
        open_count = await self._db.fetchone(
            "SELECT COUNT(*) AS n FROM attempts WHERE campaign = :c AND state = 'dialing'", params
        )
        assert flags is not None and open_count is not None
        abandons = await self.abandon_counts(
            campaign,
            now,
            {f"{hours}h": timedelta(hours=hours) for hours in found.settings.abandon.windows_hours},
        )
        return {
            "campaign": campaign,
            "state": found.state,
            "dialing_mode": found.settings.dialing_mode,
            "settings_revision": found.settings_revision,
            "leads": {
                "total": flags["total"],
                **{row["state"]: row["n"] for row in by_state},
                "on_dnc": flags["on_dnc"] or 0,
                "no_timezone": flags["no_timezone"] or 0,
            },
            "attempts": {
                "open": open_count["n"],
                **{row["result"]: row["n"] for row in by_result},
            },
            "dispositions": {row["disposition"]: row["n"] for row in by_disposition},
            "abandon_target_percent": found.settings.abandon.target_percent,
            "abandon_percent": {name: _percent(count) for name, count in abandons.items()},
        }

    async def lead_counts(self, campaign: str) -> dict[str, int]:
        rows = await self._db.fetchall(
            "SELECT state, COUNT(*) AS n FROM leads WHERE campaign = :c GROUP BY state",
            {"c": campaign},
        )
        return {row["state"]: row["n"] for row in rows}

    async def abandon_counts(
        self, campaign: str, now: datetime, windows: Mapping[str, timedelta]
    ) -> dict[str, AbandonCount]:
        """The campaign's abandon count over each named window ending at ``now``, in one query:
        the one computation behind the status' percentages and the gauges' ratios."""
        if not windows:
            return {}
        params: dict[str, Any] = {"c": campaign, "earliest": to_iso(now - max(windows.values()))}
        sums = []
        for index, span in enumerate(windows.values()):
            params[f"since_{index}"] = to_iso(now - span)
            sums.append(
                f"SUM(CASE WHEN ended_at >= :since_{index} THEN 1 ELSE 0 END) AS live_{index},"
                f" SUM(CASE WHEN ended_at >= :since_{index} AND result = 'abandoned'"
                f" THEN 1 ELSE 0 END) AS abandoned_{index}"
            )
        row = await self._db.fetchone(
            f"SELECT {', '.join(sums)} FROM attempts WHERE campaign = :c"
            " AND result IN ('human', 'abandoned') AND ended_at >= :earliest",
            params,
        )
        return {
            name: AbandonCount(
                abandoned=(row or {}).get(f"abandoned_{index}") or 0,
                live=(row or {}).get(f"live_{index}") or 0,
            )
            for index, name in enumerate(windows)
        }

    async def abandon_ratios(self, campaign: str, now: datetime) -> dict[str, float]:
        """Abandoned / live-answered calls over the gauge's windows (0 while none)."""
        counts = await self.abandon_counts(campaign, now, METRIC_ABANDON_WINDOWS)
        return {name: count.ratio or 0.0 for name, count in counts.items()}

    async def live_answers(
        self, campaign: str, since: datetime, *, other_than: str | None = None
    ) -> list[LiveAnswer]:
        """The campaign's live-answered attempts that ended at ``since`` or later, oldest first;
        ``other_than``: only those of the other workers."""
        others = " AND worker != :me" if other_than is not None else ""
        rows = await self._db.fetchall(
            "SELECT attempt_id, worker, ended_at, result FROM attempts WHERE campaign = :c"
            f" AND result IN ('human', 'abandoned') AND ended_at >= :since{others}"
            " ORDER BY ended_at",
            {"c": campaign, "since": to_iso(since), "me": other_than},
        )
        return [
            LiveAnswer(r["attempt_id"], r["worker"], from_iso(r["ended_at"]).timestamp(),
                       r["result"] == "abandoned")
            for r in rows
        ]

    async def record_connected(self, attempt_id: str, agent_id: str, now: datetime) -> None:
        """``agent_id`` took the call of ``attempt_id`` at ``now``."""
        await self._db.execute(
            "UPDATE attempts SET agent_id = :agent, connected_at = :now WHERE attempt_id = :id",
            {"agent": agent_id, "now": to_iso(now), "id": attempt_id},
        )

    async def connected_calls(
        self, since: datetime, campaign: str | None = None
    ) -> list[ConnectedCall]:
        """Every call an agent took from ``since`` on (of ``campaign``, or of every campaign),
        oldest first. Its talk ends at the connect plus the talk time the dialer measured (the
        attempt's ``ended_at`` is when its result was written, later if that waited for the
        store), or at ``ended_at`` for an attempt settled without one (after a restart)."""
        of_campaign = " AND campaign = :c" if campaign is not None else ""
        rows = await self._db.fetchall(
            "SELECT attempt_id, agent_id, campaign, connected_at, state, ended_at, talk_seconds,"
            " disposition, disposed_at FROM attempts"
            f" WHERE agent_id IS NOT NULL AND connected_at >= :since{of_campaign}"
            " ORDER BY connected_at",
            {"since": to_iso(since), "c": campaign},
        )
        # each campaign's settings read once, not once per call (the gauges ask every scrape)
        wrapups = {
            name: float((await self.campaign(name)).settings.agent_wrapup_seconds)
            for name in {row["campaign"] for row in rows}
        }
        calls = []
        for row in rows:
            connected = from_iso(row["connected_at"])
            talk_end = None
            if row["state"] == "done":
                talk_end = (
                    from_iso(row["ended_at"]) if row["talk_seconds"] is None
                    else connected + timedelta(seconds=row["talk_seconds"])
                )
            calls.append(ConnectedCall(
                row["attempt_id"], row["agent_id"], row["campaign"], connected, talk_end,
                wrapups[row["campaign"]], row["disposition"], from_iso_or_none(row["disposed_at"]),
            ))
        return calls

    async def pacing_history(self, campaign: str, limit: int) -> list[FinishedAttempt]:
        """The campaign's last ``limit`` finished attempts, oldest first: what the pacing
        history held before a restart."""
        rows = await self._db.fetchall(
            "SELECT started_at, answered_at, ended_at, talk_seconds FROM attempts"
            " WHERE campaign = :c AND state = 'done' AND result != :not_dialed"
            " ORDER BY ended_at DESC LIMIT :n",
            {"c": campaign, "n": limit, "not_dialed": Result.NOT_DIALED.value},
        )
        return [
            FinishedAttempt(
                started_at=datetime.fromisoformat(r["started_at"]),
                ended_at=datetime.fromisoformat(r["ended_at"]),
                answered_at=from_iso_or_none(r["answered_at"]),
                talk_seconds=r["talk_seconds"],
            )
            for r in reversed(rows)
        ]

    def export_rows(self, campaign: str) -> AsyncIterator[Row]:
        """Every lead with each of its attempts (one row per attempt; leads never called once)."""
        return self._db.iterate(
            "SELECT leads.phone, leads.name, leads.timezone, leads.state AS lead_state,"
            " leads.attempts, leads.last_result, leads.next_attempt_at,"
            f" CASE WHEN {_ON_DNC} THEN 1 ELSE 0 END AS on_dnc, leads.custom_json,"
            " a.attempt_id, a.attempt_no, a.started_at, a.ended_at, a.result, a.cause,"
            " a.agent_id AS agent, a.talk_seconds, a.disposition"
            " FROM leads LEFT JOIN attempts a"
            " ON a.campaign = leads.campaign AND a.phone = leads.phone"
            " WHERE leads.campaign = :c ORDER BY leads.phone, a.attempt_no",
            {"c": campaign},
        )

    # --- do-not-call lists ------------------------------------------------------------------

    async def add_dnc(
        self, scope: str, phones: Iterable[str], now: datetime, source: str = ""
    ) -> int:
        """Add numbers to a list (``GLOBAL_DNC`` or a campaign name); returns how many were new."""
        async with self._db.transaction() as conn:
            if scope != GLOBAL_DNC:
                await self.campaign(scope, conn)
            listed = {
                row["phone"]
                async for row in conn.iterate(
                    "SELECT phone FROM dnc WHERE scope = :s", {"s": scope}
                )
            }
            new = sorted(set(phones) - listed)
            await conn.executemany(
                "INSERT INTO dnc (scope, phone, added_at, source)"
                " VALUES (:scope, :phone, :now, :source)",
                [{"scope": scope, "phone": p, "now": to_iso(now), "source": source} for p in new],
            )
        return len(new)

    async def remove_dnc(self, scope: str, phones: Iterable[str]) -> int:
        removed = 0
        async with self._db.transaction() as conn:
            for phone in set(phones):
                removed += await conn.execute(
                    "DELETE FROM dnc WHERE scope = :s AND phone = :p", {"s": scope, "p": phone}
                )
        return removed

    async def list_dnc(self, scope: str) -> list[Row]:
        return await self._db.fetchall(
            "SELECT phone, added_at, source FROM dnc WHERE scope = :s ORDER BY phone",
            {"s": scope},
        )


def _percent(count: AbandonCount) -> float | None:
    """An abandon rate as ``callctl campaign status`` and the API show it: a percentage with
    two decimals (computed from the counts, so it rounds as it always did)."""
    return round(100.0 * count.abandoned / count.live, 2) if count.live else None


def _recycle_filter(
    campaign: str, rule: RecycleRule, settings: CampaignSettings, now: datetime
) -> tuple[str, dict[str, Any]]:
    """The WHERE conditions of the leads ``rule`` picks, with their parameters: finished (done,
    or out of attempts), their last result at least ``older_than`` old, and that result or the
    last attempt's disposition one the rule names."""
    params: dict[str, Any] = {
        "c": campaign,
        "max": settings.max_attempts,
        "now": to_iso(now),
        "cutoff": to_iso(now - rule.older_than),
    }
    matches = []
    if rule.results:
        results = _in_list("result", sorted(rule.results), params)
        matches.append(f"last_result IN ({results})")
    if rule.dispositions:
        dispositions = _in_list("disposition", sorted(rule.dispositions), params)
        # the last attempt is numbered as the lead's attempts (a not_dialed one that gave its
        # number back may share it, but was never answered, so it has no disposition)
        matches.append(
            "EXISTS (SELECT 1 FROM attempts WHERE attempts.campaign = leads.campaign"
            " AND attempts.phone = leads.phone AND attempts.attempt_no = leads.attempts"
            f" AND attempts.disposition IN ({dispositions}))"
        )
    where = (
        f"campaign = :c AND (state = 'done' OR (state = 'ready' AND NOT {_HAS_ATTEMPTS_LEFT}))"
        f" AND last_result_at <= :cutoff AND ({' OR '.join(matches)})"
    )
    return where, params


def _in_list(name: str, values: Sequence[str], params: dict[str, Any]) -> str:
    """Placeholders ``:name0, :name1, ...`` for ``values``, added to ``params``."""
    for index, value in enumerate(values):
        params[f"{name}{index}"] = value
    return ", ".join(f":{name}{index}" for index in range(len(values)))


def _lead_params(campaign: str, lead: Lead, now: datetime) -> dict[str, Any]:
    return {
        "campaign": campaign,
        "phone": lead.phone,
        "name": lead.name,
        "timezone": lead.timezone,
        "custom_json": json.dumps(lead.custom, sort_keys=True, ensure_ascii=False),
        "now": to_iso(now),
    }


def _snapshot(row: Row) -> LeadSnapshot:
    return LeadSnapshot(
        phone=row["phone"],
        timezone=row["timezone"],
        attempts=row["attempts_made"],
        next_attempt_at=from_iso_or_none(row["next_attempt_at"]),
        last_abandoned_at=from_iso_or_none(row["last_abandoned_at"]),
    )


_ATTEMPT_FIELDS = (
    "campaign, phone, started_at, state, disposition, disposition_lead, disposition_retry_at,"
    " disposed_by"
)


async def _attempt(conn: Connection, attempt_id: str) -> Row:
    """An attempt's lead, start, state and disposition; ``DialerStoreError`` if unknown."""
    attempt = await conn.fetchone(
        f"SELECT {_ATTEMPT_FIELDS} FROM attempts WHERE attempt_id = :id", {"id": attempt_id}
    )
    if attempt is None:
        raise DialerStoreError(f"no attempt {attempt_id!r}")
    return attempt


async def _open_attempt(conn: Connection, attempt_id: str) -> Row:
    """The campaign and phone of an attempt still open; ``DialerStoreError`` if it is not."""
    attempt = await conn.fetchone(
        "SELECT campaign, phone, started_at FROM attempts"
        " WHERE attempt_id = :id AND state = 'dialing'",
        {"id": attempt_id},
    )
    if attempt is None:
        raise DialerStoreError(f"no open attempt {attempt_id!r}")
    return attempt


async def _dispose_lead(
    conn: Connection, attempt: Row, attempts_made: int, settings: CampaignSettings, now: datetime
) -> datetime | None:
    """The lead's part of an attempt's disposition, once its result is in: a ``dnc`` puts the
    number on the global list (the customer asked not to be called, whatever the campaign);
    returns when the lead is dialed again (None: it is finished)."""
    lead = attempt["disposition_lead"]
    if lead == "dnc":
        await conn.execute(
            "INSERT INTO dnc (scope, phone, added_at, source) VALUES (:scope, :phone, :now, :src)"
            " ON CONFLICT (scope, phone) DO NOTHING",
            {
                "scope": GLOBAL_DNC,
                "phone": attempt["phone"],
                "now": to_iso(now),
                "src": f"disposition {attempt['disposition']} by agent {attempt['disposed_by']}",
            },
        )
    if lead == "retry" and attempts_made < settings.max_attempts:
        return from_iso(attempt["disposition_retry_at"])
    return None


def _open_attempt_of(row: Row) -> OpenAttempt:
    return OpenAttempt(
        attempt_id=row["attempt_id"],
        campaign=row["campaign"],
        phone=row["phone"],
        attempt_no=row["attempt_no"],
        worker=row["worker"],
        started_at=from_iso(row["started_at"]),
        channel=row["channel"],
    )
