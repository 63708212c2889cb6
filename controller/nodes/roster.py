"""The site's nodes as the store holds them (``callctl node``): a pure view of their leases.

A name in the store carries up to two leases: its controller's on the node's inbound calls
(``node_leases``, ``node.lease``) and its dialer worker's row (``dialer_workers``, 30 s, with
the agents it seats). ``node.name`` defaults to ``dialer.worker_id``, so on most sites both are
one name, and one row per name shows them side by side.

Forgetting a name deletes both rows, for a node taken out of service for good: its gone lease
otherwise stays in every listing, and its agents stay covered by the other workers (alert
``CallctlDialerAgentsCovered`` firing) until another worker's ``dialer.agents`` names them. It
is refused while either lease is live (the controller would write its rows again at its next
renewal) and while the store still holds open calls or attempts of it: the survivors find
those through its leases, and settle them within a lease of its end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from controller.dialer.workers import WorkerLease, agents_to_cover


@dataclass(frozen=True)
class NodeView:
    """One name of the site: its leases (None: no such row), what it seats and has open."""

    name: str
    node_lease_until: datetime | None
    dialer_lease_until: datetime | None
    #: the agents its ``dialer.agents`` names; empty: all of them (None: no worker row)
    dialer_agents: tuple[str, ...] | None
    #: agents of gone workers it seats meanwhile (after its first lease since a start)
    covers: tuple[str, ...]
    open_calls: int
    open_attempts: int


def roster(
    node_leases: Mapping[str, datetime],
    workers: Sequence[WorkerLease],
    open_calls: Mapping[str, int],
    open_attempts: Mapping[str, int],
    now: datetime,
) -> list[NodeView]:
    """Every name any lease or open call or attempt mentions, sorted."""
    by_worker = {lease.worker: lease for lease in workers}
    names = sorted(set(node_leases) | set(by_worker) | set(open_calls) | set(open_attempts))
    views = []
    for name in names:
        worker = by_worker.get(name)
        alive = worker is not None and worker.lease_until > now
        views.append(NodeView(
            name=name,
            node_lease_until=node_leases.get(name),
            dialer_lease_until=worker.lease_until if worker else None,
            dialer_agents=worker.agents if worker else None,
            covers=tuple(sorted(agents_to_cover(name, workers, now))) if alive else (),
            open_calls=open_calls.get(name, 0),
            open_attempts=open_attempts.get(name, 0),
        ))
    return views


def forget_refusal(view: NodeView, now: datetime) -> str | None:
    """Why ``view``'s rows must stay (a sentence), or None if they may go."""
    for lease, until in (("node", view.node_lease_until), ("dialer", view.dialer_lease_until)):
        if until is not None and until > now:
            return (f"{view.name}'s controller is alive ({lease} lease until"
                    f" {until.isoformat(timespec='seconds')}): stop it, then wait for the lease"
                    " to run out")
    if view.open_calls or view.open_attempts:
        return (f"the store still has {view.open_calls} open call(s) and {view.open_attempts}"
                f" open attempt(s) of {view.name}: a running controller settles them once the"
                " leases ran out; try again then")
    return None


def homeless_agents(name: str, workers: Sequence[WorkerLease]) -> list[str]:
    """The agents ``name``'s worker seats that no other worker's ``dialer.agents`` names (and
    none seats all): once ``name`` is forgotten, nobody calls them."""
    others = [lease for lease in workers if lease.worker != name]
    if any(not lease.agents for lease in others):
        return []
    own = next((lease.agents for lease in workers if lease.worker == name), ())
    return sorted(set(own) - {agent for lease in others for agent in lease.agents})
