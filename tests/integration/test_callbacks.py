"""Queue callbacks on the real Asterisk: book with DTMF 1, keep the place, call back once.

The caller (sipp, RFC 2833 digits from sipp's pcaps) waits in a queue with no agent, presses 1
and hangs up; the callback's placeholder waits in the queue; when an agent logs in, its phone
rings first, then the carrier (a sipp UAS that answers and presses 1, or a "voicemail" that
presses nothing) sees the callback's INVITE and the two are bridged.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.app import Controller
from controller.callbacks.machine import Callback, State
from controller.callbacks.repository import CALLBACK_LEASE, CallbackRepository
from controller.config import Config
from controller.faults import CRASH_ENV
from controller.state.model import AgentState
from testbed.asterisk import AsteriskInstance
from testbed.sipp import Sipp, SippPool

from .harness import Api, ControllerProcess, running_controller, wait_for, with_sections
from .test_agent_features import scrape, value
from .test_dialer import acli, carrier_calls, invites_by_number, store_rows
from .test_inbound import inbound_toml, login, logout_all, number, unique_queue

CALLER = "0441234567"  # a Zurich number: valid in region CH
CALLBACK_NUMBER = "+41441234567"
PRESS_ONE = "2500:1"  # the customer's Read("press 1") starts after the ~1.5 s announcement


def callback_queue(name: str, service_level: int = 20, **options: Any) -> str:
    settings = {"offer_after": 1, "offer_every": 5, "regions": '["CH"]', "retries": 1,
                "retry_gap": 1, "ring_timeout": 15, **options}
    return (
        f'[inbound.queues.{name}]\nmembers = ["1001"]\nwrapup = 0\n'
        f"service_level = {service_level}\n"
        f"[inbound.queues.{name}.callback]\n"
        + "".join(f"{key} = {value}\n" for key, value in settings.items())
    )


def setup(base: Path, target: Path, asterisk: AsteriskInstance, queue_text: str,
          queue: str) -> Config:
    config = with_sections(base, inbound_toml(queue_text, number("5000", queue)), target)
    asterisk.install_inbound(config.inbound)
    return config


async def callbacks_of(controller: Controller, queue: str) -> list[Any]:
    return list(await controller.store.fetchall(
        "SELECT * FROM callbacks WHERE queue = :q ORDER BY booked_at", {"q": queue}
    ))


async def book(sipp: SippPool, keys: str = "2000:1", **values: str) -> None:
    """A caller who presses 1 after two seconds in the queue, then hangs up."""
    caller = sipp.dtmf_call("5000", keys, CALLER=values.pop("CALLER", CALLER),
                            HOLD_MS=values.pop("HOLD_MS", "2500"), **values)
    stats = await asyncio.to_thread(caller.wait, 60)
    assert stats.successful == 1, caller.output()


@pytest.mark.timeout(120)
async def test_a_booked_callback_reaches_the_agent_first_then_one_invite_and_a_bridge(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path
) -> None:
    q = unique_queue("cb")
    # a 1 s answer target: the callback, answered seconds after the caller arrived, misses it
    config = setup(controller_config_file, tmp_path / "c.toml", asterisk,
                   callback_queue(q, service_level=1), q)
    agent_phone = sipp.agent_phones(RING_S="1", TALK_MS="60000")
    carrier = sipp.callback_carrier(PRESS_ONE, RING_S="1")
    api = Api(config)
    async with running_controller(config) as running:
        controller = running.controller
        try:
            # the same number books twice: one callback
            await book(sipp)
            await book(sipp)
            [queued] = await wait_for(
                lambda: _in_state(controller, q, "queued"), 10, "the callback to be queued"
            )
            assert queued["phone"] == CALLBACK_NUMBER
            assert len(await callbacks_of(controller, q)) == 1
            assert carrier_calls(carrier) == []
            await login(api, "1001", q)
            await wait_for(lambda: _in_state(controller, q, "answered"), 40,
                           "the callback to be answered")
            bridge = await wait_for(lambda: _bridge(controller), 10, "the bridge")
            [row] = await callbacks_of(controller, q)
            callers = await controller.store.fetchall(
                "SELECT outcome, arrived_at FROM inbound_calls WHERE queue = :q"
                " ORDER BY arrived_at", {"q": q}
            )
            series = await scrape(api)
            _, status = await api.request("GET", "/api/v1/queues")
        finally:
            await logout_all(api)
    assert len(bridge["channels"]) == 2
    assert [c["outcome"] for c in callers] == ["callback", "callback"]  # not abandoned
    # the callback's answer counts for the queue, from the first caller's arrival: its wait
    # in the answered waits, and in the service level (no inbound call was answered or
    # abandoned: without the callback, today's service level would be None, the gauge 1.0)
    assert row["arrived_at"] == callers[0]["arrived_at"]
    waited = (datetime.fromisoformat(row["ended_at"])
              - datetime.fromisoformat(row["arrived_at"])).total_seconds()
    assert value(series, "callctl_queue_wait_seconds_count", queue=q, outcome="answered") == 1
    assert value(series, "callctl_queue_wait_seconds_sum", queue=q, outcome="answered") == (
        pytest.approx(waited)
    )
    assert waited > 1
    assert ("callctl_queue_service_level_ratio", frozenset({("queue", q)})) in series
    assert value(series, "callctl_queue_service_level_ratio", queue=q) == 0.0
    [today] = [queue for queue in status["queues"] if queue["queue"] == q]
    assert today["service_level_today"] == 0.0
    seen = invites_by_number(carrier_calls(carrier))
    assert list(seen) == [CALLBACK_NUMBER] and len(seen[CALLBACK_NUMBER]) == 1
    [agent_rang] = invites_received(agent_phone)
    assert agent_rang < seen[CALLBACK_NUMBER][0].first  # the agent's phone rang first
    assert (row["state"], row["attempts"]) == ("answered", 1)


@pytest.mark.timeout(120)
async def test_a_voicemail_that_never_presses_one_is_retried_then_unreached(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path
) -> None:
    q = unique_queue("cbvm")
    config = setup(controller_config_file, tmp_path / "c.toml", asterisk,
                   callback_queue(q, key_timeout=2), q)
    sipp.agent_phones(RING_S="1", TALK_MS="60000")
    carrier = sipp.callback_carrier("", RING_S="1")  # answers, presses nothing
    api = Api(config)
    async with running_controller(config) as running:
        controller = running.controller
        try:
            await book(sipp)  # no agent yet: the caller waits, so it is offered the callback
            await login(api, "1001", q)
            [row] = await wait_for(lambda: _in_state(controller, q, "unreached"), 60,
                                   "the callback to be unreached")
        finally:
            await logout_all(api)
    assert row["attempts"] == 2  # one attempt and one retry, never answered
    seen = invites_by_number(carrier_calls(carrier))
    assert len(seen[CALLBACK_NUMBER]) == 2


@pytest.mark.timeout(120)
async def test_a_callback_of_a_controller_that_is_gone_is_taken_over_and_called_once(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path
) -> None:
    """Two callbacks another controller booked on the store: one whose owner's lease ran out
    (it is gone), one whose owner's lease holds. This controller takes the first over, places
    it and calls it once; the second stays its owner's, never placed here nor dialed."""
    q = unique_queue("cbtake")
    config = setup(controller_config_file, tmp_path / "c.toml", asterisk, callback_queue(q), q)
    sipp.agent_phones(RING_S="1", TALK_MS="60000")
    carrier = sipp.callback_carrier(PRESS_ONE, RING_S="1")
    api = Api(config)
    now = datetime.now(UTC)
    lapsed = Callback(uuid.uuid4().hex[:12], q, CALLBACK_NUMBER, arrived_at=now - timedelta(
        seconds=90), booked_at=now - CALLBACK_LEASE - timedelta(seconds=30), state=State.QUEUED)
    held = Callback(uuid.uuid4().hex[:12], q, "+41441234568", arrived_at=now, booked_at=now)
    async with running_controller(config) as running:
        controller = running.controller
        repo = CallbackRepository(controller.store)
        await repo.book(lapsed, "call-of-the-gone", "node-gone")
        await repo.book(held, "call-of-the-other", "node-other")
        try:
            await login(api, "1001", q)
            await wait_for(lambda: _in_state(controller, q, "answered"), 40,
                           "the callback taken over to be answered")
            rows = {row["callback_id"]: row for row in await callbacks_of(controller, q)}
            placeholders = list(controller.model.queues[q].callers)
            # only its owner may cancel the other's: this controller refuses, naming why
            refused, refusal = await api.request(
                "POST", f"/api/v1/callbacks/{held.callback_id}/cancel"
            )
            _, listed = await api.request("GET", "/api/v1/callbacks")
        finally:
            await logout_all(api)
    assert (rows[lapsed.callback_id]["owner"], rows[lapsed.callback_id]["attempts"]) == (
        config.node_name, 1
    )
    assert (rows[held.callback_id]["owner"], rows[held.callback_id]["state"]) == (
        "node-other", "booked"
    )
    assert placeholders == []  # none for the callback another controller holds
    assert refused == 409 and "another controller's" in refusal["error"]
    assert {(c["callback_id"], c["owner"]) for c in listed["callbacks"]} == {
        (lapsed.callback_id, config.node_name), (held.callback_id, "node-other")
    }
    seen = invites_by_number(carrier_calls(carrier))
    assert list(seen) == [CALLBACK_NUMBER] and len(seen[CALLBACK_NUMBER]) == 1


@pytest.mark.timeout(150)
async def test_a_controller_killed_while_dialing_still_sends_one_invite(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path
) -> None:
    q = unique_queue("cbcrash")
    config_file = tmp_path / "c.toml"
    config = setup(controller_config_file, config_file, asterisk, callback_queue(q), q)
    sipp.agent_phones(RING_S="1", TALK_MS="60000")
    carrier = sipp.callback_carrier(PRESS_ONE, RING_S="5")  # rings through the restart
    log_file = tmp_path / "controller.log"
    crashing = ControllerProcess(config_file, log_file,
                                 env={CRASH_ENV: "after_callback_originate"})
    restarted = ControllerProcess(config_file, log_file)
    api = Api(config)
    try:
        crashing.start()
        await wait_for(api.healthy, 20, "the controller to be healthy")
        await book(sipp)
        await login(api, "1001", q)
        await wait_for(crashing.exited, 30, "the controller to crash while dialing")
        restarted.start()
        await wait_for(api.healthy, 20, "the restarted controller to be healthy")
        await wait_for(
            lambda: _stored_state(config, q, "answered"), 40, "the callback to be answered"
        )
        await logout_all(api)
    finally:
        crashing.stop()
        restarted.stop()
    events = [json.loads(line) for line in log_file.read_text().splitlines()
              if line.startswith("{")]
    assert [e["point"] for e in events if e["event"] == "faults.crashing"] == [
        "after_callback_originate"
    ]
    assert [e for e in events if e["event"] == "callback.attempt_adopted"]
    seen = invites_by_number(carrier_calls(carrier))
    assert list(seen) == [CALLBACK_NUMBER] and len(seen[CALLBACK_NUMBER]) == 1


_RECEIVED_INVITE = re.compile(
    r"^-+ (\d{4}-\d\d-\d\d\s+[\d:.]+)\s*\n[^\n]*message received[^\n]*\n\s*INVITE ", re.M
)


def invites_received(sipp: Sipp) -> list[datetime]:
    """When each INVITE reached a UAS, from its message trace."""
    return [
        datetime.fromisoformat(" ".join(stamp.split()))
        for stamp in _RECEIVED_INVITE.findall(sipp.messages())
    ]


async def _in_state(controller: Controller, queue: str, state: str) -> list[Any]:
    return [row for row in await callbacks_of(controller, queue) if row["state"] == state]


async def _stored_state(config: Config, queue: str, state: str) -> bool:
    rows = await store_rows(config, "SELECT state FROM callbacks WHERE queue = :q", {"q": queue})
    return [row["state"] for row in rows] == [state]


async def _bridge(controller: Controller) -> Any:
    bridges = await controller.ari.request("GET", "/bridges")
    return next((b for b in bridges if b["id"].startswith("cbb-") and b["channels"]), None)


@pytest.mark.timeout(120)
async def test_an_invalid_caller_id_keys_a_number_in_and_a_bad_entry_is_refused(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path
) -> None:
    q = unique_queue("cbkey")
    config_file = tmp_path / "c.toml"
    config = setup(controller_config_file, config_file, asterisk, callback_queue(q), q)
    async with running_controller(config) as running:
        controller = running.controller
        # 1 accepts; "12#" during the entry prompt is refused; the number keyed after the
        # refusal prompt (5 s of keys) is read back (about 9 s) and confirmed with 1 during
        # "if this is correct press 1" (each wait starts as the keys before it start)
        await book(sipp, "2000:1,2000:12#,4000:0441234567#,17000:1", CALLER="12",
                   HOLD_MS="4000")
        [row] = await wait_for(lambda: _in_state(controller, q, "queued"), 10,
                               "the keyed callback to be queued")
        rows = await callbacks_of(controller, q)
        await wait_for(lambda: controller.model.queues[q].callers, 5, "the placeholder")
        # cancelled from the CLI: the placeholder leaves the queue, the outcome is counted
        cancelled = json.loads(await acli(
            config_file, "callback", "cancel", row["callback_id"], "--json"
        ))
        await wait_for(lambda: not controller.model.queues[q].callers, 5,
                       "the placeholder to leave the queue")
        listed = json.loads(await acli(config_file, "callback", "list", "--json"))
        exposition = (await controller.metrics.render()).decode()
    assert row["phone"] == CALLBACK_NUMBER
    assert len(rows) == 1  # the refused entry was never stored
    assert cancelled["state"] == "cancelled"
    assert [(c["callback_id"], c["state"]) for c in listed if c["queue"] == q] == [
        (row["callback_id"], "cancelled")
    ]
    assert f'callctl_callbacks_total{{outcome="cancelled",queue="{q}"}} 1.0' in exposition
    assert f'callctl_callbacks_pending{{queue="{q}"}} 0.0' in exposition


def closed_schedule(name: str) -> str:
    """A schedule with no hours: closed until a supervisor opens it (``schedule override``)."""
    return (
        f'[inbound.schedules.{name}]\ntimezone = "UTC"\nafter_hours = "announcement:beep"\n'
    )


async def ticks_of(controller: Controller, rounds: int) -> None:
    """Until the callback ticker has gone over the pending callbacks ``rounds`` more times."""
    target = controller.callbacks.ticks + rounds
    await wait_for(lambda: controller.callbacks.ticks >= target, 10, f"{rounds} callback ticks")


def _agents_available(controller: Controller, queue: str) -> bool:
    model_queue = controller.model.queues.get(queue)
    now = controller.model.now()
    by_state = model_queue.agents_by_state(now) if model_queue else {}
    return by_state.get(AgentState.AVAILABLE, 0) >= 1


@pytest.mark.timeout(90)
async def test_a_callback_booked_while_closed_is_not_dialed_until_the_schedule_opens(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path
) -> None:
    q = unique_queue("cbhours")
    hours = f"{q}-hours"
    config_file = tmp_path / "c.toml"
    config = with_sections(
        controller_config_file,
        inbound_toml(callback_queue(q, schedule=f'"{hours}"'), number("5000", q),
                     closed_schedule(hours)),
        config_file,
    )
    asterisk.install_inbound(config.inbound)
    sipp.agent_phones(RING_S="1", TALK_MS="60000")
    carrier = sipp.callback_carrier(PRESS_ONE, RING_S="1")
    api = Api(config)
    async with running_controller(config) as running:
        controller = running.controller
        try:
            await book(sipp)  # the number has no schedule: the caller queues while closed
            await login(api, "1001", q)  # a free agent, but the callback's schedule is closed
            await wait_for(lambda: _agents_available(controller, q), 10, "the agent available")
            await ticks_of(controller, 2)  # the ticker saw it closed with the agent free
            before_opening = [row["state"] for row in await callbacks_of(controller, q)]
            placeholders_before = dict(controller.model.queues[q].callers)
            invites_before = carrier_calls(carrier)
            # a supervisor opens the schedule now, as on a day the hours did not foresee
            opened = datetime.now(UTC)
            listed = json.loads(await acli(config_file, "schedule", "override", hours, "open",
                                           "--json"))
            await wait_for(lambda: _in_state(controller, q, "answered"), 40,
                           "the callback to be answered after the opening")
            lifted = json.loads(await acli(config_file, "schedule", "override", hours, "auto",
                                           "--json"))
        finally:
            await logout_all(api)
    assert before_opening == ["booked"] and invites_before == [] and placeholders_before == {}
    assert (listed["open"], listed["hours_open"], listed["override"]) == (True, False, "open")
    assert (lifted["open"], lifted["override"]) == (False, "auto")
    [call] = carrier_calls(carrier)
    assert call.first.replace(tzinfo=UTC) >= opened
