"""Which agents of a gone dialer worker this worker seats meanwhile: a pure decision.

Each worker seats the campaign agents its ``dialer.agents`` names, so no agent is nailed up
by two workers. A worker that dies would leave its agents idle until it is back; instead the
workers still alive share them out. Every worker renews a lease on its row in
``dialer_workers`` (with the agents it names) and reads all the rows back, so each one
computes the same split from the same rows:

* an agent is **orphaned** when a worker whose lease ran out names it and no live worker does
  (a live worker that names none seats every agent, so nothing is orphaned then);
* the orphans, sorted, are dealt round the live workers, sorted by id: the k-th to the
  (k mod n)-th, so a big team's agents spread over the survivors instead of all landing on one.

When the gone worker renews again its agents are no longer orphans: whoever covered them lets
them go (an idle line at once, one on a call after that call and its wrap-up) and their own
worker seats them again. For the instants in which two workers disagree (one read the rows
before a renewal, the other after) the proxy's one-call-per-agent guard answers the second
seat 486, and the machine calls that agent again ``AGENT_RETRY_S`` later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class WorkerLease:
    """One dialer worker's row: the agents it seats (empty: all) and until when it is alive."""

    worker: str
    agents: tuple[str, ...]
    lease_until: datetime


def gone_workers(worker: str, leases: Sequence[WorkerLease], now: datetime) -> list[WorkerLease]:
    """The workers whose lease ran out; never ``worker`` itself (it is asking: it is alive,
    whether or not its last renewal is read back yet)."""
    return [lease for lease in leases if lease.lease_until <= now and lease.worker != worker]


def agents_to_cover(worker: str, leases: Sequence[WorkerLease], now: datetime) -> frozenset[str]:
    """The agents of gone workers that ``worker`` seats until they are back."""
    gone = gone_workers(worker, leases, now)
    live = [lease for lease in leases if lease not in gone]
    if any(not lease.agents for lease in live):
        return frozenset()
    seated = {agent for lease in live for agent in lease.agents}
    orphans = sorted({agent for lease in gone for agent in lease.agents} - seated)
    workers = sorted({lease.worker for lease in live} | {worker})
    mine = workers.index(worker)
    return frozenset(agent for k, agent in enumerate(orphans) if k % len(workers) == mine)
