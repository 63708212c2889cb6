"""Callbacks: the machine's transitions, the number check, the config's errors, the rendered
Asterisk side and the repository (one pending callback per queue and number) on both stores."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.callbacks.config import CallbackConfig
from controller.callbacks.machine import (
    AgentAnswered,
    AttemptEnded,
    Callback,
    Cancel,
    Dial,
    Finished,
    HangUpAttempt,
    NotDialed,
    PlaceholderGone,
    PlaceInQueue,
    State,
    TakenOver,
    Tick,
    Withdraw,
    step,
)
from controller.callbacks.number import callback_number
from controller.callbacks.repository import CallbackRepository
from controller.cli.main import main
from controller.inbound.asterisk_conf import queue_options, render_inbound_dialplan
from controller.inbound.waits import service_level_waits
from controller.store import open_store
from controller.store.base import Database, to_iso

from .test_inbound_config import config_with, problems_of
from .test_recording_support import write_config

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POLICY = CallbackConfig(retries=1, retry_gap=60, expire_after=3600)


def booked(**changes: Any) -> Callback:
    return replace(
        Callback("abc", "support", "+41441234567", arrived_at=T0, booked_at=T0), **changes
    )


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# ---- the machine ---------------------------------------------------------------------------


def test_booked_is_queued_when_open_then_dialed_once_when_an_agent_answers() -> None:
    queued = step(booked(), Tick(at(1), open=True), POLICY)
    assert queued.callback.state is State.QUEUED and queued.commands == (PlaceInQueue(),)
    assert queued.callback.placeholder_id == "cbw-abc-1"
    dialing = step(queued.callback, AgentAnswered(at(5), agent="1001"), POLICY)
    assert dialing.callback.state is State.DIALING and dialing.callback.attempts == 1
    assert dialing.commands == (Dial("cb-abc-1"),)
    assert dialing.callback.placeholder_id == "cbw-abc-1"  # the one the agent took
    again = step(dialing.callback, AgentAnswered(at(6), agent="1002"), POLICY)
    assert not again.changed and again.commands == ()  # never a second dial for one attempt
    answered = step(dialing.callback, AttemptEnded(at(9), reached=True), POLICY)
    assert answered.callback.state is State.ANSWERED
    assert answered.commands == (Finished(State.ANSWERED),)


def test_unreached_attempts_retry_after_the_gap_then_end_unreached() -> None:
    dialing = step(booked(state=State.QUEUED), AgentAnswered(at(1), agent="1001"), POLICY).callback
    retry = step(dialing, AttemptEnded(at(10), reached=False), POLICY)
    assert retry.callback.state is State.RETRY and retry.callback.not_before == at(70)
    assert retry.commands == (Withdraw("cbw-abc-1"),)
    assert not step(retry.callback, Tick(at(69), open=True), POLICY).changed
    queued = step(retry.callback, Tick(at(70), open=True), POLICY).callback
    assert queued.placeholder_id == "cbw-abc-2"
    second = step(queued, AgentAnswered(at(80), agent="1001"), POLICY).callback
    assert second.attempt_id == "cb-abc-2"
    unreached = step(second, AttemptEnded(at(90), reached=False), POLICY)
    assert unreached.callback.state is State.UNREACHED
    assert unreached.commands == (Withdraw("cbw-abc-2"), Finished(State.UNREACHED))


def test_closed_schedule_holds_or_expires_the_callback() -> None:
    assert not step(booked(), Tick(at(1), open=False), POLICY).changed
    carried = step(booked(state=State.QUEUED), Tick(at(1), open=False), POLICY)
    assert carried.callback.state is State.BOOKED and carried.commands == (Withdraw("cbw-abc-1"),)
    expiring = CallbackConfig(when_closed="expire")
    expired = step(booked(state=State.QUEUED), Tick(at(1), open=False), expiring)
    assert expired.callback.state is State.EXPIRED
    late = step(booked(), Tick(at(3600), open=True), POLICY)
    assert late.callback.state is State.EXPIRED and late.commands == (Finished(State.EXPIRED),)


def test_a_dialing_callback_is_never_expired_by_a_tick_and_cancel_hangs_up_both_legs() -> None:
    dialing = booked(state=State.DIALING, attempts=1)
    assert not step(dialing, Tick(at(7200), open=False), POLICY).changed
    cancelled = step(dialing, Cancel(at(2)), POLICY)
    assert cancelled.callback.state is State.CANCELLED
    assert cancelled.commands == (
        HangUpAttempt("cb-abc-1"), Withdraw("cbw-abc-1"), Finished(State.CANCELLED)
    )
    assert not step(cancelled.callback, Tick(at(3), open=True), POLICY).changed


def test_restart_events_give_back_an_undialed_attempt_and_requeue_a_lost_placeholder() -> None:
    not_dialed = step(booked(state=State.DIALING, attempts=1), NotDialed(at(1)), POLICY)
    assert (not_dialed.callback.state, not_dialed.callback.attempts) == (State.BOOKED, 0)
    gone = step(booked(state=State.QUEUED), PlaceholderGone(at(1)), POLICY)
    assert gone.callback.state is State.BOOKED and gone.commands == ()


def test_a_callback_taken_over_is_placed_anew_and_a_lost_attempt_is_spent_and_waited_out() -> None:
    # its placeholder is in the other controller's Asterisk: nothing of ours to hang up
    queued = step(booked(state=State.QUEUED), TakenOver(at(1)), POLICY)
    assert queued.callback.state is State.BOOKED and queued.commands == ()
    assert step(queued.callback, Tick(at(2), open=True), POLICY).commands == (PlaceInQueue(),)
    # the attempt may still ring there: the next one waits for its ring timeout (30 s), the
    # time to press 1 (5 s) and the margin (60 s), longer than the retry gap (60 s)
    retry = step(booked(state=State.DIALING, attempts=1), TakenOver(at(100)), POLICY)
    assert (retry.callback.state, retry.callback.attempts) == (State.RETRY, 1)
    assert retry.callback.not_before == at(195) and retry.commands == ()
    assert step(retry.callback, Tick(at(195), open=True), POLICY).callback.attempt_id == "cb-abc-1"
    long_gap = step(booked(state=State.DIALING, attempts=1), TakenOver(at(100)),
                    POLICY.model_copy(update={"retry_gap": 600}))
    assert long_gap.callback.not_before == at(700)
    spent = step(booked(state=State.DIALING, attempts=2), TakenOver(at(100)), POLICY)
    assert spent.callback.state is State.UNREACHED
    assert spent.commands == (Finished(State.UNREACHED),)
    for waiting in (State.BOOKED, State.RETRY):  # no channel anywhere: it just goes on
        assert not step(booked(state=waiting), TakenOver(at(1)), POLICY).changed


# ---- the number ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "regions", "expected"),
    [
        ("0441234567", ["CH"], "+41441234567"),
        ("+41441234567", ["CH"], "+41441234567"),
        ("+41441234567", ["GB"], None),  # valid, but not a region we may call
        ("12", ["CH"], None),
        ("anonymous", ["CH"], None),
        ("", ["CH"], None),
        ("02079460000", ["CH", "GB"], "+442079460000"),
    ],
)
def test_callback_number(raw: str, regions: list[str], expected: str | None) -> None:
    assert callback_number(raw, regions) == expected


# ---- config and the Asterisk side ----------------------------------------------------------


def test_config_errors_name_the_key() -> None:
    queue = {"members": ["1001"], "callback": {"schedule": "nope", "regions": ["XX"]}}
    assert problems_of({"queues": {"q": queue}}) == [
        ("inbound.queues.q.callback.schedule", "schedule 'nope' is not defined"),
        ("inbound.queues.q.callback.regions[0]", "unknown region 'XX' (use an ISO 3166 code)"),
    ]
    assert problems_of({"queues": {"q": {"callback": {}}}}) == [
        ("inbound.queues.q.callback.regions",
         "give the regions callbacks may call (or default_region)"),
    ]
    [(where, _)] = problems_of({"queues": {"q": {"callback": {"retry_gap": 0, "regions": ["CH"]}}}})
    assert where == "inbound.queues.q.callback.retry_gap"


def test_a_callback_queue_offers_by_periodic_announcement_and_renders_its_placeholder() -> None:
    config = config_with({
        "queues": {"q": {"callback": {"regions": ["CH"], "offer_after": 20, "offer_every": 45}},
                   "plain": {}},
    })
    options = queue_options(config.inbound.queues["q"])
    assert options["context"] == "callctl-callback-offer"
    assert options["periodic-announce-startdelay"] == "20"
    assert options["periodic-announce-frequency"] == "45"
    assert "context" not in queue_options(config.inbound.queues["plain"])
    dialplan = render_inbound_dialplan(config.inbound, "callctl", T0)
    wait = dialplan.split("[callctl-callback-wait]")[1]
    assert "exten => q,1,Set(CALLCTL_QUEUE=q)" in wait
    assert "Queue(q,r,,,,,,,${CALLCTL_CALLBACK_POSITION})" in wait
    assert "plain" not in wait


# ---- the repository ------------------------------------------------------------------------


async def test_one_pending_callback_per_queue_and_number(store: Database) -> None:
    repo = CallbackRepository(store)
    first = await repo.book(booked(), "call-1", "node-a")
    second = await repo.book(booked(callback_id="def", booked_at=at(5)), "call-2", "node-b")
    other_queue = await repo.book(booked(callback_id="ghi", queue="sales"), "call-3", "node-a")
    assert (first.new, second.new, other_queue.new) == (True, False, True)
    assert second.callback.callback_id == "abc"
    assert await repo.save(booked(state=State.ANSWERED, attempts=1), at(60), "node-a")
    again = await repo.book(booked(callback_id="jkl", booked_at=at(90)), "call-4", "node-a")
    assert again.new  # the first one ended: the number may book again
    assert [c.callback_id for c in await repo.owned("node-a")] == ["ghi", "jkl"]
    stored = await repo.get("abc")
    assert stored is not None and (stored.state, stored.attempts) == (State.ANSWERED, 1)
    assert [(c.callback.callback_id, c.owner) for c in await repo.listing([State.ANSWERED])] == [
        ("abc", "node-a")
    ]


async def test_ended_callbacks_count_in_the_service_level_from_the_first_arrival(
    store: Database,
) -> None:
    repo = CallbackRepository(store)
    arrived = T0 - timedelta(seconds=40)  # the caller waited 40 s before booking at T0
    ends = {"answered": (State.ANSWERED, 95), "unreached": (State.UNREACHED, 400),
            "expired": (State.EXPIRED, 3600), "cancelled": (State.CANCELLED, 30),
            "pending": (State.RETRY, 70), "old": (State.ANSWERED, -7200)}
    for number, (callback_id, (state, ended)) in enumerate(ends.items()):
        callback = booked(callback_id=callback_id, phone=f"+4144123456{number}",
                          arrived_at=arrived - timedelta(hours=3) * (callback_id == "old"))
        await repo.book(callback, f"call-{callback_id}", "node-a")
        await repo.save(replace(callback, state=state, attempts=1), at(ended), "node-a")
    # an inbound call of the queue, answered after 12 s, beside the callbacks
    await store.execute(
        "INSERT INTO inbound_calls (call_id, channel, did, caller, queue, arrived_at, queued_at,"
        " answered_at, ended_at, outcome) VALUES ('c1', 'PJSIP/x', '+15550100', '+15550199',"
        " 'support', :t0, :t0, :answered, :ended, 'answered')",
        {"t0": to_iso(T0), "answered": to_iso(at(12)), "ended": to_iso(at(60))},
    )
    waits = await repo.waits(ended_since=T0)
    assert waits["support"].answered == [135.0]  # the old one ended before the window
    assert sorted(waits["support"].abandoned) == [440.0, 3640.0]  # cancelled: not counted
    stored = await repo.get("answered")
    assert stored is not None and stored.state is State.ANSWERED
    row = await store.fetchone("SELECT ended_at FROM callbacks WHERE callback_id = 'pending'")
    assert row is not None and row["ended_at"] is None
    merged = await service_level_waits(store, ended_since=T0)
    assert sorted(merged["support"].answered) == [12.0, 135.0]
    assert sorted(merged["support"].abandoned) == [440.0, 3640.0]


async def test_a_pending_callback_has_one_owner_and_a_survivor_takes_over_a_lapsed_one(
    store: Database,
) -> None:
    repo = CallbackRepository(store)
    await repo.book(booked(), "call-1", "node-a")  # leased until T0 + 30 s
    await repo.book(booked(callback_id="def", phone="+41441234568"), "call-2", "node-b")
    await repo.book(booked(callback_id="old", phone="+41441234569"), "call-3", "node-a")
    # a row from before owners: nobody's, no lease
    await store.execute("UPDATE callbacks SET owner = '', lease_until = NULL"
                        " WHERE callback_id = 'old'")
    [nobodys] = await repo.take_over("node-b", at(10))  # the others' leases hold
    assert (nobodys.callback.callback_id, nobodys.previous_owner) == ("old", "")
    assert await repo.renew("node-a", at(20)) == {"abc"}  # until at(50)
    assert await repo.renew("node-b", at(20)) == {"def", "old"}
    assert await repo.take_over("node-b", at(45)) == []
    assert await repo.save(booked(state=State.QUEUED), at(46), "node-a")  # renews: at(76)
    assert await repo.renew("node-b", at(46)) == {"def", "old"}
    assert await repo.take_over("node-b", at(60)) == []
    # node-a is gone: no renewal after at(46); node-b renews its own, then takes node-a's
    assert await repo.renew("node-b", at(70)) == {"def", "old"}
    [taken] = await repo.take_over("node-b", at(80))
    assert (taken.callback.callback_id, taken.previous_owner) == ("abc", "node-a")
    assert taken.callback.state is State.QUEUED  # as node-a left it
    assert sorted(c.callback_id for c in await repo.owned("node-b")) == ["abc", "def", "old"]
    # node-a back: its writes of the callback change nothing, and it learns it lost it
    assert not await repo.save(booked(state=State.DIALING, attempts=1), at(81), "node-a")
    assert await repo.renew("node-a", at(81)) == set()
    stored = await repo.get("abc")
    assert stored is not None and stored.state is State.QUEUED
    assert await repo.save(booked(state=State.BOOKED), at(82), "node-b")
    # an ended callback is nobody's to take over, however old its lease
    assert await repo.save(booked(callback_id="def", phone="+41441234568",
                                  state=State.CANCELLED), at(83), "node-b")
    lapsed = await repo.take_over("node-a", at(9999))
    assert sorted(t.callback.callback_id for t in lapsed) == ["abc", "old"]


async def test_controllers_taking_over_at_once_take_each_callback_once(
    store: Database, store_url: str
) -> None:
    repo = CallbackRepository(store)
    for n in range(40):
        await repo.book(booked(callback_id=f"cb{n:02d}", phone=f"+414412345{n:02d}",
                               arrived_at=at(n)), f"call-{n}", "gone")
    others = [await open_store(store_url) for _ in range(2)]
    taken: list[tuple[str, str]] = []
    try:
        controllers = [("node-a", repo), *[(f"node-{n}", CallbackRepository(db))
                                           for n, db in zip("bc", others, strict=True)]]
        # rounds of six claims at once until one takes nothing: a claim passes over the rows
        # another claim in flight holds (PostgreSQL: SKIP LOCKED), so one round may leave some
        while rounds := [
            (name, takeover.callback.callback_id)
            for name, takeovers in zip(
                [name for name, _ in controllers] * 2,
                await asyncio.gather(*[r.take_over(name, at(60)) for name, r in controllers * 2]),
                strict=True,
            )
            for takeover in takeovers
        ]:
            taken += rounds
    finally:
        for db in others:
            await db.close()
    ids = [callback_id for _, callback_id in taken]
    assert len(ids) == len(set(ids)) == 40
    for name, _ in controllers:
        owned = {c.callback_id for c in await repo.owned(name)}
        assert owned == {callback_id for owner, callback_id in taken if owner == name}


# ---- the CLI -------------------------------------------------------------------------------


def test_cli_lists_callbacks_as_a_table_and_json_and_refuses_bad_input(
    tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, store_url=store_url)

    async def seed() -> None:
        db = await open_store(store_url)
        try:
            repo = CallbackRepository(db)
            await repo.book(booked(), "call-1", "node-a")
            await repo.book(booked(callback_id="def", queue="sales", booked_at=at(5)), "call-2",
                            "node-a")
            await repo.save(booked(callback_id="def", queue="sales", state=State.UNREACHED,
                                   attempts=2, booked_at=at(5)), at(60), "node-a")
        finally:
            await db.close()

    asyncio.run(seed())
    assert main(["--config", str(config), "callback", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(c["callback_id"], c["state"], c["owner"]) for c in listed] == [
        ("def", "unreached", "node-a"), ("abc", "booked", "node-a")
    ]
    assert main(["--config", str(config), "callback", "list", "--state", "booked"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["callback_id", "queue", "phone", "state"]
    assert [line.split()[0] for line in table[1:]] == ["abc"]
    with pytest.raises(SystemExit) as bad_state:
        main(["--config", str(config), "callback", "list", "--state", "dialled"])
    assert bad_state.value.code == 2
    assert "unknown state in 'dialled'" in capsys.readouterr().err
    assert main(["--config", str(config), "callback", "cancel", "../x"]) == 2
    assert "is not a callback id" in capsys.readouterr().err
