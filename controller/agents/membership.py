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
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from controller.inbound.repository import QueueMembership

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
    """The agent as a member of one queue on this node."""

    paused: bool
    reason: str


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

