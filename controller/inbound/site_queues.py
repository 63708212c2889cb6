"""One queue as the whole site has it: each node's view of it, merged.

app_queue keeps a queue's callers and members per node, so a controller's live model shows only
its own node. Each controller publishes its node's view of every queue (``NodeQueueView``: the
callers waiting, the oldest one's arrival, each member's state) to the store once a second
(``controller.nodes.queue_views``), and the queue status of any controller merges the fresh
views of all nodes with its own live one (``merge_views``).

Callers are on one node each: the site's count is the sum, its longest wait the oldest arrival.
An agent is a member on every node that holds the queue; its site-wide state is the busiest one
any node sees (``SITE_STATE_ORDER``): on a call on node 2 is on a call, even though node 1's
app_queue sees the agent's device free.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from controller.state.model import AgentState, Queue

# the busiest first: an agent on a call anywhere is on a call; free only where no node says
# otherwise; unavailable only when no node reaches the agent
SITE_STATE_ORDER = (
    AgentState.ON_CALL, AgentState.RINGING, AgentState.WRAPUP, AgentState.PAUSED,
    AgentState.AVAILABLE, AgentState.UNAVAILABLE,
)


@dataclass(frozen=True)
class NodeQueueView:
    """A queue as one node has it; ``oldest_joined_at``: epoch seconds, ``None`` with no
    callers; ``agents``: each member's interface and state."""

    callers: int = 0
    oldest_joined_at: float | None = None
    agents: dict[str, AgentState] = field(default_factory=dict)

    def longest_wait(self, now: float) -> float:
        return 0.0 if self.oldest_joined_at is None else max(now - self.oldest_joined_at, 0.0)

    def agents_by_state(self) -> dict[AgentState, int]:
        counts = dict.fromkeys(AgentState, 0)
        for state in self.agents.values():
            counts[state] += 1
        return counts


def view_of(queue: Queue, now: float) -> NodeQueueView:
    """This node's view of ``queue`` from the live model: its members as its own app_queue
    has them (a hold for a call on another node is that node's to tell)."""
    return NodeQueueView(
        callers=len(queue.callers),
        oldest_joined_at=min((c.joined_at for c in queue.callers.values()), default=None),
        agents={member.interface: member.own_state(now) for member in queue.members.values()},
    )


def merge_views(views: Iterable[NodeQueueView]) -> NodeQueueView:
    """The site's view of a queue from its nodes' views."""
    callers = 0
    oldest: float | None = None
    agents: dict[str, AgentState] = {}
    for view in views:
        callers += view.callers
        if view.oldest_joined_at is not None:
            oldest = view.oldest_joined_at if oldest is None else min(oldest, view.oldest_joined_at)
        for agent, state in view.agents.items():
            seen = agents.get(agent)
            if seen is None or SITE_STATE_ORDER.index(state) < SITE_STATE_ORDER.index(seen):
                agents[agent] = state
    return NodeQueueView(callers, oldest, agents)


def views_by_queue(
    queues: Mapping[str, Queue], now: float, elsewhere: Mapping[str, list[NodeQueueView]]
) -> dict[str, list[NodeQueueView]]:
    """Every queue's views: this node's (from its live ``queues``) first, then the other
    nodes' (``elsewhere``); a queue only one side knows has only that side's."""
    views = {name: [view_of(queue, now)] for name, queue in queues.items()}
    for name, others in elsewhere.items():
        views.setdefault(name, []).extend(others)
    return views
