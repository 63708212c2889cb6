"""Supervisors listen to, whisper to, or barge in on an agent's call.

ChanSpy, not ARI snoop channels: the supervisor's own channel runs ChanSpy in the dialplan
(``callctl-agent-feature``) on the *exact* channel the controller names (``PJSIP/1001-0000002a``:
a full channel name as ChanSpy's prefix matches that channel only, never ``PJSIP/10010-...``).
ChanSpy mixes each mode's audio itself (``w``: the agent alone hears the supervisor; ``B``:
both sides do) and the session lives in Asterisk: a controller restart does not cut a
supervisor off. Snoop channels would need a bridge per session owned by our Stasis app, and
the direction of each whisper set by hand, for nothing more.

The controller decides (``refusal``: only a supervisor of the agent's team, and only while
the agent is on a call) and audits every attempt in ``supervision_sessions``; the session ends
when the supervisor's channel hangs up. ``callctl supervise`` and the API ring the supervisor's
phone into the same feature code, so every way in is checked and audited the same.

On a site of several nodes ChanSpy reaches only the channels of its own node, and the proxy
sends the supervisor's ``*51`` to any node. A node that does not have the agent's call, while
another node's view (``node_queues``) shows the agent on one, refuses the phone's INVITE with
503 before answering it: the proxy then tries the next node. The API and CLI, which ring the
supervisor from this controller's node, are refused with the node that has the call.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from controller.agents.config import AgentsConfig
from controller.agents.dialplan import (
    AGENTS_CONTEXT,
    ELSEWHERE_VARIABLE,
    SOUND_VARIABLE,
    SPY_CHANNEL_VARIABLE,
    SPY_OPTIONS_VARIABLE,
)
from controller.agents.service import FeatureChannelPort
from controller.asterisk.events import AmiEvent, Hangup, StasisStart
from controller.logs import get_logger
from controller.pjsip import agent_interface
from controller.store.base import Database, StoreError, from_iso, to_iso
from controller.tasks import TaskSet

log = get_logger("agents.supervision")

SOUND_STARTED = "beep"
SOUND_REFUSED = "beeperr"
RUNG_PREFIX = "supervise-"  # the channel id of a supervisor's phone rung by the CLI or API


class SupervisionMode(StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"

    @property
    def chanspy_options(self) -> str:
        """q: no announcement of the spied channel; E: end when it hangs up."""
        return {"listen": "qE", "whisper": "qEw", "barge": "qEB"}[self.value]


def refusal(config: AgentsConfig, supervisor: str, agent_id: str) -> str | None:
    """Why ``supervisor`` may not supervise ``agent_id``; None when it may."""
    if agent_id not in config.by_id:
        return f"{agent_id} is not a configured agent"
    if supervisor not in config.team_supervisors(agent_id):
        return f"{supervisor} is not a supervisor of agent {agent_id}'s team"
    return None


def agent_call_channel(agent_id: str, channel_names: Collection[str]) -> str | None:
    """The agent's phone channel on a call (``PJSIP/1001-0000002a``), if any."""
    prefix = f"{agent_interface(agent_id)}-"
    found = sorted(name for name in channel_names if name.startswith(prefix))
    return found[-1] if found else None


def _not_here(agent_id: str, elsewhere: Sequence[str], passed_on: bool) -> str:
    """Why a session does not start on this node: the agent's call is on none, or on another
    (``elsewhere``), to which the phone's INVITE is ``passed_on`` or not."""
    if not elsewhere:
        return f"agent {agent_id} is not on a call"
    then = "passed to the next node" if passed_on else "ask its controller"
    return f"agent {agent_id}'s call is on {elsewhere[0]}: {then}"


@dataclass(frozen=True)
class SupervisionSession:
    session_id: str
    supervisor: str
    agent_id: str
    mode: SupervisionMode
    spied_channel: str
    refused: str | None
    started_at: datetime
    ended_at: datetime | None


class SupervisionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, session: SupervisionSession) -> None:
        await self._db.execute(
            "INSERT INTO supervision_sessions (session_id, supervisor, agent_id, mode,"
            " spied_channel, refused, started_at, ended_at) VALUES (:id, :supervisor, :agent,"
            " :mode, :spied, :refused, :started, :ended) ON CONFLICT (session_id) DO NOTHING",
            {"id": session.session_id, "supervisor": session.supervisor,
             "agent": session.agent_id, "mode": session.mode.value,
             "spied": session.spied_channel, "refused": session.refused,
             "started": to_iso(session.started_at),
             "ended": None if session.ended_at is None else to_iso(session.ended_at)},
        )

    async def end(self, session_id: str, now: datetime) -> bool:
        """The session's supervisor hung up; False when it is no open session."""
        return await self._db.execute(
            "UPDATE supervision_sessions SET ended_at = :now"
            " WHERE session_id = :id AND ended_at IS NULL",
            {"id": session_id, "now": to_iso(now)},
        ) > 0

    async def sessions(self, since: datetime) -> list[SupervisionSession]:
        rows = await self._db.fetchall(
            "SELECT session_id, supervisor, agent_id, mode, spied_channel, refused, started_at,"
            " ended_at FROM supervision_sessions WHERE started_at >= :since"
            " ORDER BY started_at, session_id", {"since": to_iso(since)})
        return [SupervisionSession(
            row["session_id"], row["supervisor"], row["agent_id"], SupervisionMode(row["mode"]),
            row["spied_channel"], row["refused"], from_iso(row["started_at"]),
            None if row["ended_at"] is None else from_iso(row["ended_at"])) for row in rows]


class OriginatePort(Protocol):
    """``AmiClient.originate``: rings ``channel`` and sends it into the dialplan."""

    async def originate(
        self, channel: str, channel_id: str, *, context: str | None = None,
        exten: str | None = None, priority: int | None = None, caller_id: str | None = None,
    ) -> None: ...


class CallElsewhere(Exception):
    """The agent's call is on another node, whose controller can start the session."""


class SupervisionService:
    def __init__(
        self, config: AgentsConfig, store: Database, channels: FeatureChannelPort,
        originator: OriginatePort, live_channels: Callable[[], Collection[str]],
        clock: Callable[[], datetime],
        nodes_with_call: Callable[[str], Awaitable[list[str]]] | None = None,
    ) -> None:
        """``nodes_with_call(agent)``: the other nodes that show the agent on a call (none on
        a node alone)."""
        self._config = config
        self._sessions = SupervisionRepository(store)
        self._channels = channels
        self._originator = originator
        self._live_channels = live_channels
        self._nodes_with_call = nodes_with_call
        self._now = clock
        self._open: set[str] = set()
        self._tasks = TaskSet("agents.supervision")

    async def ring_supervisor(
        self, supervisor: str, agent_id: str, mode: SupervisionMode
    ) -> str | None:
        """Ring the supervisor's phone into the feature code (CLI and API); the refusal
        when the supervisor may not (audited like the phone's), else None (the session's
        checks run again on answer). Raises ``CallElsewhere`` (audited too) when the agent's
        call is on another node."""
        session_id = f"{RUNG_PREFIX}{secrets.token_hex(6)}"  # the supervisor's channel, if rung
        why = refusal(self._config, supervisor, agent_id)
        here = why is None and agent_call_channel(agent_id, self._live_channels())
        elsewhere = [] if why or here else await self._elsewhere(agent_id)
        if elsewhere:
            why = _not_here(agent_id, elsewhere, passed_on=False)
        if why is not None:
            now = self._now()
            await self._sessions.record(SupervisionSession(
                session_id, supervisor, agent_id, mode, "", why, now, now))
            log.info("supervision.refused", session_id=session_id, supervisor=supervisor,
                     agent_id=agent_id, why=why)
            if elsewhere:
                raise CallElsewhere(why)
            return why
        code = getattr(self._config.feature_codes, mode.value)
        await self._originator.originate(
            agent_interface(supervisor), session_id,
            context=AGENTS_CONTEXT, exten=f"{code}{agent_id}", priority=1,
            caller_id=f'"{mode.value} {agent_id}" <{agent_id}>')
        log.info("supervision.ringing", supervisor=supervisor, agent_id=agent_id,
                 mode=mode.value)
        return None

    def on_stasis(self, event: StasisStart) -> None:
        """``Stasis(app, supervise, MODE, AGENT, ENDPOINT)`` from the supervisor's phone."""
        self._tasks.spawn(self._start(event))

    async def _start(self, event: StasisStart) -> None:
        _, mode_text, agent_id, supervisor = (*event.args, "", "", "")[:4]
        channel = event.channel.id
        mode = SupervisionMode(mode_text) if mode_text in set(SupervisionMode) else None
        why = refusal(self._config, supervisor, agent_id) if mode else f"no mode {mode_text!r}"
        spied, passed_on = "", False
        if why is None:
            spied = agent_call_channel(agent_id, self._live_channels()) or ""
        if why is None and not spied:
            elsewhere = await self._elsewhere(agent_id)
            # the phone's own INVITE can go on to the next node; a channel rung from here cannot
            passed_on = bool(elsewhere) and not channel.startswith(RUNG_PREFIX)
            why = _not_here(agent_id, elsewhere, passed_on)
        now = self._now()
        session = SupervisionSession(channel, supervisor, agent_id,
                                     mode or SupervisionMode.LISTEN, spied, why, now,
                                     now if why else None)
        await self._sessions.record(session)
        variables = {SOUND_VARIABLE: SOUND_REFUSED if why else SOUND_STARTED}
        if passed_on:
            variables = {ELSEWHERE_VARIABLE: "1"}
        if why is None and mode is not None:
            variables |= {SPY_CHANNEL_VARIABLE: spied,
                          SPY_OPTIONS_VARIABLE: mode.chanspy_options}
            self._open.add(channel)
            log.info("supervision.started", session_id=channel, supervisor=supervisor,
                     agent_id=agent_id, mode=mode.value, spied_channel=spied)
        else:
            log.info("supervision.refused", session_id=channel, supervisor=supervisor,
                     agent_id=agent_id, why=why)
        await self._channels.continue_with(channel, variables)

    async def _elsewhere(self, agent_id: str) -> list[str]:
        if self._nodes_with_call is None:
            return []
        try:
            return await self._nodes_with_call(agent_id)
        except StoreError as error:  # as on a node alone: refused here, "not on a call"
            log.warning("supervision.nodes_unknown", agent_id=agent_id, error=str(error))
            return []

    def on_ami_event(self, event: AmiEvent) -> None:
        if isinstance(event, Hangup) and event.uniqueid in self._open:
            self._open.discard(event.uniqueid)
            self._tasks.spawn(self._end(event.uniqueid))

    async def _end(self, session_id: str) -> None:
        if await self._sessions.end(session_id, self._now()):
            log.info("supervision.ended", session_id=session_id)

    async def sessions(self, since: datetime) -> list[SupervisionSession]:
        return await self._sessions.sessions(since)
