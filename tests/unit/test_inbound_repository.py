"""The inbound repositories on a real store, SQLite and PostgreSQL: call rows and the agents'
persisted state."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from controller.inbound.repository import (
    AgentRepository,
    AnsweredCall,
    InboundCallRecord,
    InboundCallRepository,
    LoggedInMembership,
    QueueMembership,
    StoredAgent,
)
from controller.nodes.repository import NodeLeaseRepository
from controller.store.base import Database, to_iso

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def seconds(n: float) -> datetime:
    return NOON + timedelta(seconds=n)


@pytest.fixture
def db(store: Database) -> Database:
    """The store of these tests, on each backend (``store`` in tests/conftest.py)."""
    return store


def call(call_id: str, **fields: object) -> InboundCallRecord:
    base: dict[str, object] = {
        "channel": f"PJSIP/trunk-{call_id}", "did": "+15550100", "caller": "+15550199",
        "arrived_at": NOON, "queue": "support",
    }
    return InboundCallRecord(call_id, **(base | fields))  # type: ignore[arg-type]


async def test_a_call_is_written_at_arrival_and_completed_at_its_end(db: Database) -> None:
    calls = InboundCallRepository(db)
    await calls.add_arrival(call("c1"))
    arrived = await db.fetchone("SELECT * FROM inbound_calls WHERE call_id = 'c1'")
    assert arrived is not None
    assert (arrived["arrived_at"], arrived["outcome"], arrived["ended_at"]) == (
        to_iso(NOON), None, None
    )
    await calls.set_overflow("c1", "support.overflow[0]", "queue:sales", "sales")
    await calls.save_ended(call(
        "c1", queue="sales", queued_at=seconds(1), answered_at=seconds(9), ended_at=seconds(60),
        outcome="answered", agent_id="1001", rule="support.overflow[0]", destination="queue:sales",
    ))
    [row] = await db.fetchall("SELECT * FROM inbound_calls")
    assert dict(row) == {
        "call_id": "c1", "channel": "PJSIP/trunk-c1", "did": "+15550100", "caller": "+15550199",
        "queue": "sales", "arrived_at": to_iso(NOON), "queued_at": to_iso(seconds(1)),
        "answered_at": to_iso(seconds(9)), "ended_at": to_iso(seconds(60)),
        "outcome": "answered", "agent_id": "1001", "rule": "support.overflow[0]",
        "destination": "queue:sales", "reason": None, "node": None,
        "disposition": None, "disposed_by": None, "disposed_at": None,
    }


async def test_an_arrival_written_after_the_end_keeps_the_final_row(db: Database) -> None:
    calls = InboundCallRepository(db)
    await calls.save_ended(call("c1", queued_at=seconds(1), ended_at=seconds(5),
                                outcome="abandoned"))
    await calls.add_arrival(call("c1"))  # the Hangup overtook the arrival's write
    row = await db.fetchone("SELECT outcome, ended_at FROM inbound_calls WHERE call_id = 'c1'")
    assert row is not None
    assert (row["outcome"], row["ended_at"]) == ("abandoned", to_iso(seconds(5)))


async def test_an_answer_names_its_agent_before_the_end_and_takes_one_disposition(
    db: Database,
) -> None:
    calls = InboundCallRepository(db)
    await calls.save_ended(call("before", answered_at=seconds(-90), ended_at=seconds(-30),
                                outcome="answered", agent_id="1001"))
    await calls.add_arrival(call("c1"))
    answered = call("c1", queued_at=seconds(1), answered_at=seconds(9), outcome="answered",
                    agent_id="1001")
    await calls.set_answered(answered)
    row = await db.fetchone("SELECT * FROM inbound_calls WHERE call_id = 'c1'")
    assert row is not None
    # the end writes the outcome: a call still talking is not counted answered yet
    assert (row["agent_id"], row["answered_at"], row["outcome"]) == (
        "1001", to_iso(seconds(9)), None)
    assert await calls.last_answered_by("1001") == AnsweredCall(
        "c1", "support", "+15550199", seconds(9), None, None)
    assert await calls.last_answered_by("1002") is None
    assert await calls.record_disposition("c1", "resolved", "1001", seconds(20))
    assert not await calls.record_disposition("c1", "escalated", "1001", seconds(21))
    await calls.save_ended(replace(answered, ended_at=seconds(60)))  # the end keeps it
    row = await db.fetchone("SELECT * FROM inbound_calls WHERE call_id = 'c1'")
    assert row is not None
    assert (row["disposition"], row["disposed_by"], row["disposed_at"], row["outcome"]) == (
        "resolved", "1001", to_iso(seconds(20)), "answered")
    assert {queue: tally.dispositions for queue, tally in (
        await calls.tallies(arrived_since=NOON)).items()} == {"support": {"resolved": 1}}
    assert await calls.tallies(arrived_since=seconds(1)) == {}


async def test_an_answer_written_before_the_arrival_keeps_both(db: Database) -> None:
    calls = InboundCallRepository(db)
    await calls.set_answered(call("c1", queued_at=seconds(1), answered_at=seconds(9),
                                  outcome="answered", agent_id="1001"))
    await calls.add_arrival(call("c1", rule="support.overflow[0]"))  # the writes swapped
    row = await db.fetchone("SELECT * FROM inbound_calls WHERE call_id = 'c1'")
    assert row is not None
    assert (row["agent_id"], row["queued_at"], row["outcome"], row["channel"]) == (
        "1001", to_iso(seconds(1)), None, "PJSIP/trunk-c1")


async def test_a_nodes_open_calls_are_ended_lost_once(db: Database) -> None:
    calls = InboundCallRepository(db)
    await calls.add_arrival(call("waiting", node="n1"))
    await calls.save_ended(call("queued", node="n1", arrived_at=seconds(1), queued_at=seconds(1)))
    await calls.save_ended(call("done", node="n1", ended_at=seconds(5), outcome="abandoned"))
    await calls.add_arrival(call("other", node="n2"))
    await calls.add_arrival(call("nodeless"))

    assert await calls.open_calls("n1") == [  # as stored, for a restart to follow them
        call("waiting", node="n1"),
        call("queued", node="n1", arrived_at=seconds(1), queued_at=seconds(1)),
    ]
    assert await calls.end_lost("waiting", "AMI down for 5.0 s", seconds(9)) is True
    assert await calls.end_lost("waiting", "again", seconds(10)) is False  # ended already
    assert await calls.end_lost("done", "AMI down", seconds(9)) is False
    row = await db.fetchone("SELECT * FROM inbound_calls WHERE call_id = 'waiting'")
    assert row is not None
    assert (row["outcome"], row["reason"], row["ended_at"], row["node"]) == (
        "node_lost", "AMI down for 5.0 s", to_iso(seconds(9)), "n1")
    assert [c.call_id for c in await calls.open_calls("n1")] == ["queued"]


async def test_open_calls_of_nodes_whose_lease_ran_out(db: Database) -> None:
    calls, leases = InboundCallRepository(db), NodeLeaseRepository(db)
    for n, node in enumerate(("n1", "n2", "n3")):
        await calls.add_arrival(call(f"on-{node}", node=node, arrived_at=seconds(n)))
    await calls.add_arrival(call("no-lease", node="n4"))  # a node that never held a lease
    await leases.renew("n1", seconds(10))
    await leases.renew("n2", seconds(10))
    await leases.renew("n3", seconds(30))
    await leases.renew("n2", seconds(40))  # renewed: alive

    lapsed = await calls.open_calls_of_lapsed_nodes("n1", seconds(20))
    assert lapsed == []  # n1 is the asker; n2 renewed; n3 not due yet
    lapsed = await calls.open_calls_of_lapsed_nodes("n2", seconds(31))
    assert [(c.call_id, c.node) for c in lapsed] == [("on-n1", "n1"), ("on-n3", "n3")]


async def test_the_live_nodes_where_an_agent_talks_are_known_from_the_answer_on(
    db: Database,
) -> None:
    calls, leases = InboundCallRepository(db), NodeLeaseRepository(db)
    for node in ("n1", "n2", "n3"):
        await leases.renew(node, seconds(30))
    await leases.renew("n4", seconds(5))  # its controller gone at 10 s
    await calls.set_answered(call("up", node="n2", answered_at=seconds(1), agent_id="1001"))
    await calls.set_answered(call("here", node="n1", answered_at=seconds(1), agent_id="1001"))
    await calls.set_answered(call("gone", node="n4", answered_at=seconds(1), agent_id="1001"))
    await calls.save_ended(call("over", node="n3", answered_at=seconds(1), ended_at=seconds(4),
                                outcome="answered", agent_id="1001"))
    await calls.add_arrival(call("ringing", node="n3"))
    await calls.set_answered(call("other", node="n3", answered_at=seconds(2), agent_id="1002"))

    assert await calls.talking_elsewhere("n1", seconds(10)) == {"1001": ["n2"], "1002": ["n3"]}
    assert await calls.talking_elsewhere("n2", seconds(10)) == {"1001": ["n1"], "1002": ["n3"]}


async def test_outcomes_and_waits_since_a_moment(db: Database) -> None:
    calls = InboundCallRepository(db)
    yesterday = NOON - timedelta(days=1)
    for record in (
        call("answered", queued_at=seconds(0), answered_at=seconds(12), ended_at=seconds(90),
             outcome="answered"),
        call("abandoned", queued_at=seconds(0), ended_at=seconds(30), outcome="abandoned"),
        call("sales", queue="sales", queued_at=seconds(0), answered_at=seconds(3),
             ended_at=seconds(20), outcome="answered"),
        call("never-queued", ended_at=seconds(2), outcome="abandoned"),
        call("after-hours", ended_at=seconds(1), outcome="after_hours"),
        call("old", arrived_at=yesterday, queued_at=yesterday,
             answered_at=yesterday + timedelta(seconds=5),
             ended_at=yesterday + timedelta(seconds=50), outcome="answered"),
    ):
        await calls.save_ended(record)
    await calls.add_arrival(call("still-waiting"))

    assert {queue: tally.outcomes for queue, tally in (
            await calls.tallies(arrived_since=NOON)).items()} == {
        "support": {"answered": 1, "abandoned": 2, "after_hours": 1},
        "sales": {"answered": 1},
    }
    waits = await calls.waits(ended_since=NOON)
    assert set(waits) == {"support", "sales"}
    assert (waits["support"].answered, waits["support"].abandoned) == ([12.0], [30.0])
    assert (waits["sales"].answered, waits["sales"].abandoned) == ([3.0], [])
    later = await calls.waits(ended_since=seconds(25))
    assert (later["support"].answered, later["support"].abandoned) == ([12.0], [30.0])
    assert "sales" not in later


async def test_login_logout_and_pause_are_kept(db: Database) -> None:
    agents = AgentRepository(db)
    await agents.log_in("1001", [QueueMembership("support"), QueueMembership("sales", 2)], NOON)
    await agents.set_paused("1001", True, "lunch", seconds(1))
    lunch = StoredAgent("1001", True, True, "lunch", ("sales", "support"))
    assert await agents.agents() == [lunch]
    assert await agents.agent("1001") == lunch
    assert await agents.agent("2002") is None
    assert await agents.logged_in_memberships() == [
        LoggedInMembership("1001", QueueMembership("sales", 2), True, "lunch"),
        LoggedInMembership("1001", QueueMembership("support", 0), True, "lunch"),
    ]

    await agents.log_in("1001", [QueueMembership("support")], seconds(2))  # login unpauses
    assert await agents.agents() == [StoredAgent("1001", True, False, "", ("support",))]
    await agents.set_paused("1001", True, "coaching", seconds(3))
    await agents.set_paused("1001", False, "ignored when unpausing", seconds(4))
    assert await agents.agents() == [StoredAgent("1001", True, False, "", ("support",))]

    assert await agents.log_out("1001", seconds(5)) is True
    assert await agents.agents() == [StoredAgent("1001", False, False, "", ())]
    assert await agents.logged_in_memberships() == []
    assert await agents.is_logged_in_to("1001", "support") is False
    assert await agents.log_out("2002", seconds(6)) is False
    row = await db.fetchone("SELECT interface, updated_at FROM agents WHERE agent_id = '1001'")
    assert row is not None
    assert dict(row) == {"interface": "PJSIP/1001", "updated_at": to_iso(seconds(5))}


async def test_a_membership_found_in_asterisk_is_adopted_beside_the_others(
    db: Database,
) -> None:
    agents = AgentRepository(db)
    await agents.log_in("1001", [QueueMembership("support")], NOON)
    assert await agents.is_logged_in_to("1001", "sales") is False
    await agents.adopt("1001", QueueMembership("sales", 1), True, "training", seconds(1))
    await agents.adopt("1002", QueueMembership("sales"), False, "", seconds(1))
    assert await agents.is_logged_in_to("1001", "sales") is True
    assert await agents.agents() == [
        StoredAgent("1001", True, True, "training", ("sales", "support")),
        StoredAgent("1002", True, False, "", ("sales",)),
    ]
    # adopting what is already stored changes nothing but the pause Asterisk reports
    await agents.adopt("1001", QueueMembership("sales", 5), False, "", seconds(2))
    memberships = await agents.logged_in_memberships()
    assert LoggedInMembership("1001", QueueMembership("sales", 1), False, "") in memberships
