"""Every node's queue members follow the agents' stored positions.

An agent logs in, pauses or logs out through one controller (its phone's feature code reaches
one node, the CLI or the API one controller), which changes its own node's app_queue and then
the store. The other nodes follow the store: each controller reads the agents' stored versions
(``updated_at``) every ``FOLLOW_S`` and, for an agent whose version changed since it last read
it, makes its node's members of that agent match the stored position (``member_changes``).
Only changes are followed, so a member someone adds or pauses at one node's Asterisk CLI is
left as it is (and adopted into the store, as on one node) until the agent's position changes.
Each node's followed versions are stored (``agent_follows``): after a resync, an agent whose
position changed since its node last followed it (this controller was down) is followed; a
member the store does not have of any other agent was added behind our back and is adopted.

Each node's app_queue sees only its own calls: while an agent talks on another node it looks
free here (the proxy refuses the offer, and app_queue tries again at every retry), and the
wrap-up after a queue call starts only there (the proxy lets the next offer through). Each
controller therefore reads the calls its site's agents have on other nodes (the queue calls
they answered, and whatever the other nodes' views show on their phones: a campaign's
nailed-up line, a call they placed) and holds each such agent here with a pause of its own:
``BUSY_HOLD_REASON`` while the call is up, ``WRAPUP_HOLD_REASON`` for its wrap-up in each
queue after a queue call, until an early end through any node (``holds_for_calls_elsewhere``).
A hold is this node's, not the agent's position: following the store sees a held member as
unpaused, and the agent's own pause replaces it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from controller.inbound.repository import QueueMembership
from controller.state.model import BUSY_HOLD_REASON, HOLD_REASONS, WRAPUP_HOLD_REASON

FOLLOW_S = 1.0


@dataclass(frozen=True, slots=True)
class AddMember:
    queue: str
    penalty: int


@dataclass(frozen=True, slots=True)
class RemoveMember:
    queue: str


@dataclass(frozen=True, slots=True)
class SetPause:
    queue: str
    paused: bool
    reason: str


MemberChange = AddMember | RemoveMember | SetPause


@dataclass(frozen=True, slots=True)
class NodeMember:
    """The agent as a member of one queue on this node; ``wrapup_s``: its wrap-up there."""

    paused: bool
    reason: str
    wrapup_s: float = 0.0

    @property
    def held(self) -> bool:
        return self.paused and self.reason in HOLD_REASONS


def member_changes(
    memberships: Sequence[QueueMembership], paused: bool, reason: str,
    on_node: Mapping[str, NodeMember], node_queues: Collection[str],
) -> list[MemberChange]:
    """What makes this node's members of one agent match its stored position: logged in to
    ``memberships`` (none: logged out), paused with ``reason`` or not. ``on_node``: the queues
    the agent is a member of here; ``node_queues``: the queues this node holds."""
    wanted = {m.queue: m for m in memberships if m.queue in node_queues}
    changes: list[MemberChange] = [RemoveMember(q) for q in sorted(on_node) if q not in wanted]
    reason = reason if paused else ""
    for queue, membership in sorted(wanted.items()):
        member = on_node.get(queue)
        if member is None:
            changes.append(AddMember(queue, membership.penalty))
            if paused:
                changes.append(SetPause(queue, True, reason))
        elif (member.paused, member.reason if member.paused else "") != (paused, reason):
            changes.append(SetPause(queue, paused, reason))
    return changes


def holds_for_calls_elsewhere(
    talking: Collection[str], call_ends: Iterable[tuple[str, float]],
    wrapup_ends: Iterable[tuple[str, float]], on_node: Mapping[str, Mapping[str, NodeMember]],
    now: float,
) -> dict[str, list[SetPause]]:
    """The pauses that hold agents on this node while they talk or wrap up on another, and
    the unpauses that let them go, by agent. ``talking``: the agents with a call up on another
    node; ``call_ends``: when queue calls agents took on other nodes ended;
    ``wrapup_ends``: when agents ended their wrap-up early, through any node; ``on_node``: each
    agent's members here by queue (epoch seconds throughout). A call's wrap-up runs in every
    queue of its agent (``shared_lastcall``), each as long as that queue's, from the agent's
    latest call end until an early end after it. A member its agent paused is left as it is:
    that pause holds it already, and ends when the agent says."""
    last_end: dict[str, float] = {}
    for agent_id, ended in call_ends:
        last_end[agent_id] = max(ended, last_end.get(agent_id, ended))
    for agent_id, ended in wrapup_ends:
        if agent_id in last_end and ended >= last_end[agent_id]:
            del last_end[agent_id]
    changes: dict[str, list[SetPause]] = {}
    for agent_id, members in sorted(on_node.items()):
        call_end = last_end.get(agent_id)
        for queue, member in sorted(members.items()):
            wanted = None
            if agent_id in talking:
                wanted = BUSY_HOLD_REASON
            elif call_end is not None and now < call_end + member.wrapup_s:
                wanted = WRAPUP_HOLD_REASON
            if wanted and (not member.paused or (member.held and member.reason != wanted)):
                changes.setdefault(agent_id, []).append(SetPause(queue, True, wanted))
            elif wanted is None and member.held:
                changes.setdefault(agent_id, []).append(SetPause(queue, False, ""))
    return changes
