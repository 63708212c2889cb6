"""Which agents of gone dialer workers each live worker seats (``dialer/workers.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.dialer.workers import WorkerLease, agents_to_cover

NOW = datetime(2026, 6, 2, 16, 0, tzinfo=UTC)
ALIVE = NOW + timedelta(seconds=20)
GONE = NOW - timedelta(seconds=1)


def lease(worker: str, agents: str, until: datetime) -> WorkerLease:
    return WorkerLease(worker, tuple(agents.split()), until)


def test_nothing_is_covered_while_every_worker_is_alive() -> None:
    leases = [lease("w1", "1001 1002", ALIVE), lease("w2", "1003 1004", ALIVE)]
    assert agents_to_cover("w1", leases, NOW) == frozenset()
    assert agents_to_cover("w2", leases, NOW) == frozenset()


def test_a_gone_worker_s_agents_are_dealt_round_the_live_workers_each_to_one() -> None:
    leases = [lease("w1", "1001", ALIVE), lease("w2", "1002 1003 1004 1005 1006", GONE),
              lease("w3", "1007", ALIVE)]
    covered = {worker: agents_to_cover(worker, leases, NOW) for worker in ("w1", "w3")}
    assert covered == {"w1": {"1002", "1004", "1006"}, "w3": {"1003", "1005"}}


def test_an_agent_a_live_worker_seats_is_not_covered_for_a_gone_one() -> None:
    # w2 went, and its agent 1002 was given to w1 by config meanwhile
    leases = [lease("w1", "1001 1002", ALIVE), lease("w2", "1002 1003", GONE)]
    assert agents_to_cover("w1", leases, NOW) == {"1003"}


def test_a_live_worker_seating_every_agent_leaves_nothing_to_cover() -> None:
    leases = [lease("w1", "1001", ALIVE), lease("w2", "", ALIVE), lease("w3", "1003", GONE)]
    assert agents_to_cover("w1", leases, NOW) == frozenset()


def test_a_gone_worker_that_seated_every_agent_hands_over_nobody_by_name() -> None:
    leases = [lease("w1", "1001", ALIVE), lease("w2", "", GONE)]
    assert agents_to_cover("w1", leases, NOW) == frozenset()


@pytest.mark.parametrize("own", [GONE, None])
def test_the_asking_worker_is_alive_whatever_its_row_says(own: datetime | None) -> None:
    # its renewal may not be read back yet (or its row not written): it still takes its share
    leases = [lease("w2", "1002 1003", GONE)]
    if own is not None:
        leases.append(lease("w1", "1001", own))
    assert agents_to_cover("w1", leases, NOW) == {"1002", "1003"}
