"""Feature codes from an agent's phone (sipp with digest auth) on the real Asterisk: ``*45``
logs in and out, ``*462`` pauses with reason 2 (break) in AMI, queue_log and the store, ``*46``
unpauses and clears it; the BLF hints follow; with no controller the phone hears an error.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from controller.app import Controller
from controller.asterisk.events import (
    AgentCalled,
    AgentComplete,
    AgentRingNoAnswer,
    QueueMemberAdded,
    QueueMemberPause,
    QueueMemberRemoved,
)
from controller.config import Config
from controller.state.model import AgentState
from testbed.asterisk import AsteriskInstance
from testbed.sip_ua import Phone, subscribe
from testbed.sipp import SippPool

from .harness import Api, running_controller, wait_for
from .test_inbound import (
    cli,
    inbound_toml,
    login,
    logout_all,
    number,
    queue_toml,
    routing,
    unique_queue,
    watch_events,
)

AGENT = "1001"  # a member of support in the example site
WATCHER_IP = "127.0.0.6"  # a phone watching 1001's keys; no endpoint is identified by it


async def dial(sipp: SippPool, asterisk: AsteriskInstance, code: str) -> float:
    """Agent 1001's phone dials ``code``: answered, a sound, hung up by Asterisk. Returns how
    long the call lasted."""
    started = time.monotonic()
    phone = sipp.agent_call(AGENT, asterisk.secrets.agent_passwords[AGENT], code,
                            HOLD_MS="15000")
    stats = await asyncio.to_thread(phone.wait, 20)
    assert (stats.successful, stats.failed) == (1, 0), phone.output()
    assert "BYE" in phone.received_requests(), "Asterisk ends the feature call"
    return time.monotonic() - started


def member(controller: Controller, queue: str = "support") -> object:
    return controller.model.queues[queue].members.get(f"PJSIP/{AGENT}")


def hint_state(asterisk: AsteriskInstance, code: str) -> str:
    found = re.search(rf"^\s*{re.escape(code + AGENT)}@callctl-agents\s*: \S+\s+State:(\S+)",
                      asterisk.cli("core show hints"), flags=re.MULTILINE)
    assert found, asterisk.cli("core show hints")
    return found.group(1)


async def test_feature_codes_log_in_pause_with_a_reason_unpause_and_log_out(
    asterisk: AsteriskInstance, controller_config: Config, controller_config_file: Path,
    sipp: SippPool,
) -> None:
    api = Api(controller_config)
    async with running_controller(controller_config) as running:
        controller = running.controller
        events = watch_events(controller)
        await wait_for(lambda: "support" in controller.model.queues, 10, "queues in the model")
        assert member(controller) is None

        await dial(sipp, asterisk, "*45")
        await wait_for(lambda: member(controller) is not None, 5, "1001 a member of support")
        assert {e.queue for _, e in events.of(QueueMemberAdded, interface=f"PJSIP/{AGENT}")} \
            == {"support"}
        status, out = await asyncio.to_thread(cli, controller_config_file, "agent", "list",
                                              "--json")
        listed = next(a for a in json.loads(out) if a["agent_id"] == AGENT)
        assert (listed["logged_in"], listed["queues"]) == (True, ["support"])
        assert hint_state(asterisk, "*45") == "InUse"
        assert hint_state(asterisk, "*46") == "Idle"

        await dial(sipp, asterisk, "*462")
        await wait_for(lambda: getattr(member(controller), "paused", False), 5, "1001 paused")
        assert getattr(member(controller), "paused_reason", "") == "break"
        [(_, pause)] = events.of(QueueMemberPause, interface=f"PJSIP/{AGENT}")
        assert (pause.paused, pause.paused_reason) == (True, "break")
        _, listing = await api.request("GET", "/api/v1/agents")
        stored = next(a for a in listing["agents"] if a["agent_id"] == AGENT)
        assert (stored["paused"], stored["pause_reason"]) == (True, "break")
        queue_log = (asterisk.host_path(asterisk.log_dir) / "queue_log").read_text()
        assert f"|support|{AGENT}|PAUSE|break" in queue_log, queue_log[-800:]
        assert hint_state(asterisk, "*46") == "InUse"
        paused = await scrape(api)
        assert value(paused, "callctl_agents_paused", queue="support", reason="break") == 1
        assert value(paused, "callctl_agents", queue="support", state="paused") == 1

        await dial(sipp, asterisk, "*46")
        await wait_for(lambda: not getattr(member(controller), "paused", True), 5,
                       "1001 unpaused")
        assert [(e.paused, e.paused_reason) for _, e in events.of(
            QueueMemberPause, interface=f"PJSIP/{AGENT}")][1:] == [(False, "")]
        _, listing = await api.request("GET", "/api/v1/agents")
        stored = next(a for a in listing["agents"] if a["agent_id"] == AGENT)
        assert (stored["paused"], stored["pause_reason"]) == (False, "")
        assert hint_state(asterisk, "*46") == "Idle"

        # the API goes through the same machine: unpausing again is refused with the reason
        status, body = await api.request("POST", f"/api/v1/agents/{AGENT}/unpause")
        assert (status, body["error"]) == (409, f"agent {AGENT}: not paused")

        await dial(sipp, asterisk, "*45")
        await wait_for(lambda: member(controller) is None, 5, "1001 no longer a member")
        assert [e.queue for _, e in events.of(QueueMemberRemoved, interface=f"PJSIP/{AGENT}")] \
            == ["support"]
        assert hint_state(asterisk, "*45") == "Idle"
    # the history the phone made: logged in, paused for a break (a feature call's length)
    status, out = await asyncio.to_thread(cli, controller_config_file, "agent", "stats",
                                          "--json")
    [row] = [r for r in json.loads(out)["agents"] if r["agent"] == AGENT]
    assert status == 0 and row["logged_in_s"] >= 4 and 1 <= row["paused_s"]["break"] < 10


async def test_without_the_controller_a_feature_code_answers_with_an_error_sound(
    asterisk: AsteriskInstance, sipp: SippPool, tmp_path: Path,
) -> None:
    # a controller that stopped just before (the previous test's) closed its ARI websocket;
    # Asterisk unregisters the app once it has processed the close
    await wait_for(lambda: "callctl" not in asterisk.cli("ari show apps"), 5,
                   "no controller's ARI app registered")
    lasted = await dial(sipp, asterisk, "*45")
    # answered, then something-terribly-wrong (2.7 s) before Asterisk hangs up
    assert lasted > 2.5
    assert f"PJSIP/{AGENT}" not in asterisk.cli("queue show support")


async def test_status_reason_and_keys_survive_a_controller_and_an_asterisk_restart(
    asterisk: AsteriskInstance, controller_config: Config, sipp: SippPool,
) -> None:
    async with running_controller(controller_config) as running:
        await dial(sipp, asterisk, "*45")
        await dial(sipp, asterisk, "*463")
        await wait_for(lambda: getattr(member(running.controller), "paused", False), 5,
                       "1001 paused")
    # Asterisk restarts without its memory of members and device states: the store has them
    asterisk.cli("database deltree Queue")
    asterisk.cli("database deltree CustomDevstate")
    asterisk.restart()
    assert hint_state(asterisk, "*45") == "Idle"
    async with running_controller(controller_config) as running:
        controller = running.controller
        await wait_for(lambda: getattr(member(controller), "paused", False), 15,
                       "1001 back in support, paused")
        assert getattr(member(controller), "paused_reason", "") == "training"
        await wait_for(lambda: hint_state(asterisk, "*46") == "InUse", 5, "the paused key lit")
        assert hint_state(asterisk, "*45") == "InUse"
        await dial(sipp, asterisk, "*45")
        await wait_for(lambda: member(controller) is None, 5, "1001 logged out")


async def test_unanswered_rings_pause_an_agent_with_reason_missed_and_the_caller_moves_on(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path,
) -> None:
    q = unique_queue("autopause")
    # linear: 1001 (logged in first) is always offered the call first, then 1002
    config = routing(
        controller_config_file,
        inbound_toml(queue_toml(q, strategy='"linear"', ring_timeout=2, retry=0),
                     number("5000", q)) + f"[agents.auto_pause]\n{q} = 2\n",
        tmp_path / "c.toml", asterisk,
    )
    sipp.agent_phones(RING_S="5")  # rings longer than the queue lets it: never answered
    api = Api(config)
    async with running_controller(config) as running:
        controller = running.controller
        events = watch_events(controller)
        try:
            for agent in ("1001", "1002"):
                await login(api, agent)
            caller = sipp.call("5000", HOLD_MS="20000")
            await wait_for(lambda: controller.model.queues[q].members["PJSIP/1001"].paused, 20,
                           "1001 auto-paused")
            assert controller.model.queues[q].members["PJSIP/1001"].paused_reason == "missed"
            misses = [at for at, _ in events.of(AgentRingNoAnswer, interface="PJSIP/1001")]
            offers = [at for at, _ in events.of(AgentCalled, interface="PJSIP/1002")]
            assert len(misses) == 2
            # between 1001's two misses the caller rang 1002: it went on to the next agent
            assert any(misses[0] < at < misses[1] for at in offers), (misses, offers)
            _, listing = await api.request("GET", "/api/v1/agents")
            stored = {a["agent_id"]: a for a in listing["agents"]}
            assert stored["1001"]["pause_reason"] == "missed"
        finally:
            await logout_all(api)
    caller.stop()


async def test_a_supervisor_of_the_team_pauses_and_logs_out_an_agent_and_no_one_else_may(
    asterisk: AsteriskInstance, controller_config: Config, controller_config_file: Path,
) -> None:
    # the example site: 1001 is in team support, supervised by 1003; 1005 supervises sales
    api = Api(controller_config)

    async def run_cli(*args: str) -> tuple[int, str]:
        return await asyncio.to_thread(cli, controller_config_file, *args)

    async with running_controller(controller_config) as running:
        controller = running.controller
        try:
            await login(api, AGENT)
            await wait_for(lambda: member(controller) is not None, 10, "1001 logged in")
            status, body = await api.request("POST", f"/api/v1/agents/{AGENT}/pause",
                                             {"reason": "lunch", "supervisor": "1005"})
            assert (status, body["error"]) == (
                403, "1005 is not a supervisor of agent 1001's team")
            assert (await run_cli("agent", "logout", AGENT, "--supervisor", "1002"))[0] == 1
            assert not getattr(member(controller), "paused", True)

            status, out = await run_cli("agent", "pause", AGENT, "--reason", "lunch",
                                        "--supervisor", "1003")
            assert status == 0 and "lunch" in out
            await wait_for(lambda: getattr(member(controller), "paused", False), 5,
                           "1001 paused by its supervisor")
            assert getattr(member(controller), "paused_reason", "") == "lunch"
            assert (await run_cli("agent", "logout", AGENT, "--supervisor", "1003"))[0] == 0
            await wait_for(lambda: member(controller) is None, 5, "1001 logged out")
        finally:
            await logout_all(api)


async def test_a_phone_subscribed_to_the_hints_is_notified_on_login_and_on_pause(
    asterisk: AsteriskInstance, controller_config: Config, sipp: SippPool,
) -> None:
    watcher_phone = Phone("1002", asterisk.secrets.agent_passwords["1002"])
    server = ("127.0.0.1", asterisk.ports.sip)
    async with running_controller(controller_config) as running:
        status, login_key = await subscribe(watcher_phone, f"*45{AGENT}", server, WATCHER_IP)
        assert status == 200
        status, pause_key = await subscribe(watcher_phone, f"*46{AGENT}", server, WATCHER_IP)
        assert status == 200
        try:
            await wait_for(lambda: login_key.states() and pause_key.states(), 5,
                           "the first NOTIFY of each key")
            assert login_key.states() == ["terminated"] and pause_key.states() == ["terminated"]
            await dial(sipp, asterisk, "*45")
            await wait_for(lambda: login_key.states()[-1] == "confirmed", 5,
                           "a NOTIFY: logged in")
            await dial(sipp, asterisk, "*461")
            await wait_for(lambda: pause_key.states()[-1] == "confirmed", 5, "a NOTIFY: paused")
            await dial(sipp, asterisk, "*45")
            await wait_for(lambda: login_key.states()[-1] == "terminated", 5,
                           "a NOTIFY: logged out")
            await wait_for(lambda: member(running.controller) is None, 5, "1001 logged out")
        finally:
            for key in (login_key, pause_key):
                if key.transport is not None:
                    key.transport.close()


Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(api: Api) -> Series:
    _, body = await api.request("GET", "/metrics", token=None)
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples}


def value(series: Series, name: str, **labels: str) -> float:
    return series.get((name, frozenset(labels.items())), 0.0)


async def states_shown(api: Api, config_file: Path) -> tuple[dict[str, str], dict[str, str]]:
    """1001's state per queue as the agents API and ``callctl agent list --json`` show it."""
    _, listing = await api.request("GET", "/api/v1/agents")
    status, out = await asyncio.to_thread(cli, config_file, "agent", "list", "--json")
    assert status == 0, out
    by_api = next(a for a in listing["agents"] if a["agent_id"] == AGENT)["state"]
    by_cli = next(a for a in json.loads(out) if a["agent_id"] == AGENT)["state"]
    return by_api, by_cli


def one_agent_queue(
    q: str, wrapup_s: int, base: Path, config_file: Path, asterisk: AsteriskInstance,
    sipp: SippPool, **options: str,
) -> Config:
    """Queue ``q`` of 1001 alone with a wrap-up of ``wrapup_s`` behind number 5000, loaded, in
    a site whose national caller ids are Swiss (sipp's caller is 044 123 45 67); 1001's phone
    answers after 1 s, talks 1.5 s and hangs up."""
    inbound = inbound_toml(queue_toml(q, members='["1001"]', retry=1, **options).replace(
        "wrapup = 0", f"wrapup = {wrapup_s}"), number("5000", q))
    config = routing(base, inbound.replace("[inbound]\n", '[inbound]\ndefault_region = "CH"\n'),
                     config_file, asterisk)
    sipp.agent_phones(RING_S="1", TALK_MS="1500")
    return config


def member_state(controller: Controller, q: str) -> AgentState | None:
    """1001's state in queue ``q`` as the controller's model has it."""
    found = controller.model.queues[q].members.get(f"PJSIP/{AGENT}")
    return found.state(controller.model.now()) if found else None


async def test_wrapup_is_shown_and_counted_and_ends_with_star47_or_at_its_time(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path,
) -> None:
    """The queue's wrapuptime (not a member's) after a live call: the model (also rebuilt after
    a reconnect), the agents API, ``agent list`` and ``callctl_agents`` show wrap-up, the
    per-agent series count the call;
    ``*47`` ends it, shown and counted (and Asterisk offers the next call at once); after the
    next call the wrap-up ends at its time, when Asterisk offers a waiting caller again."""
    wrapup_s = 10
    q = unique_queue("wrapup")
    config_file = tmp_path / "c.toml"
    config = one_agent_queue(q, wrapup_s, controller_config_file, config_file, asterisk, sipp)
    api = Api(config)
    offers = f"PJSIP/{AGENT}"

    def state() -> AgentState | None:
        return member_state(controller, q)

    async def in_wrapup_after_device_state() -> None:
        # AgentComplete and the device's NOT_INUSE come on separate Asterisk paths (the queue's
        # bridge, the devstate taskprocessor), in either order: until the second arrives the
        # device still says in use and the member is on_call, as app_queue sees it too
        await wait_for(lambda: state() is not AgentState.ON_CALL, 2, "1001's device not in use")
        assert state() is AgentState.WRAPUP

    async with running_controller(config) as running:
        controller = running.controller
        events = watch_events(controller)
        try:
            await login(api, AGENT)
            before = await scrape(api)
            sipp.call("5000", HOLD_MS="20000")
            [(first_end, _)] = await wait_for(
                lambda: events.of(AgentComplete, interface=offers), 20, "1001's first call to end")
            await in_wrapup_after_device_state()
            assert await states_shown(api, config_file) == ({q: "wrapup"}, {q: "wrapup"})
            shown = await scrape(api)
            assert value(shown, "callctl_agents", queue=q, state="wrapup") == 1
            assert value(shown, "callctl_agents", queue=q, state="available") == 0
            # a reconnect rebuilds the model from QueueStatus: its LastCall keeps the wrap-up
            connects = controller.ami.connects
            controller.ami.force_reconnect()
            await wait_for(lambda: controller.ami.connects > connects and controller.sync.synced,
                           5, "the resync after a reconnect")
            assert state() is AgentState.WRAPUP

            def counted(series: Series, name: str, **labels: str) -> float:
                return value(series, name, agent=AGENT, **labels) - value(
                    before, name, agent=AGENT, **labels)

            after = await wait_for(
                lambda: _when(scrape(api), lambda s: counted(
                    s, "callctl_agent_calls_handled") == 1 and counted(
                    s, "callctl_agent_seconds", activity="wrapup") > 0), 10,
                "the call and its wrap-up counted (once its end is stored)")
            assert 1 <= counted(after, "callctl_agent_seconds", activity="talking") < 10
            assert counted(after, "callctl_agent_seconds", activity="wrapup") <= wrapup_s

            await dial(sipp, asterisk, "*47")
            await wait_for(lambda: state() is AgentState.AVAILABLE, 5, "1001 available")
            assert time.time() - first_end < wrapup_s, "*47 ended the wrap-up, not its time"
            assert await states_shown(api, config_file) == ({q: "available"}, {q: "available"})

            cut = counted(await scrape(api), "callctl_agent_seconds", activity="wrapup")
            sipp.call("5000", HOLD_MS="20000")
            await wait_for(lambda: len(events.of(AgentCalled, interface=offers)) == 2, 10,
                           "the next caller offered to 1001 at once")
            # *47 ended the first call's counted wrap-up too: it no longer grows
            assert counted(await scrape(api), "callctl_agent_seconds", activity="wrapup") == cut
            second_end = (await wait_for(
                lambda: events.of(AgentComplete, interface=offers)[1:], 20,
                "1001's second call to end"))[0][0]
            await in_wrapup_after_device_state()
            waiting = sipp.call("5000", HOLD_MS="30000")
            # the model's wrap-up lasts the queue's, from the call's end ...
            wrapup_until = controller.model.queues[q].members[offers].wrapup_until
            assert abs(wrapup_until - second_end - wrapup_s) < 0.5
            await wait_for(lambda: state() is not AgentState.WRAPUP, wrapup_s + 5,
                           "the wrap-up's end")
            [*_, (third_offer, _)] = await wait_for(
                lambda: events.of(AgentCalled, interface=offers)[2:], 10,
                "the waiting caller offered to 1001")
            # ... as long as app_queue held the caller (its clock counts whole seconds)
            assert third_offer - second_end > wrapup_s - 1.5
            waiting.stop()
        finally:
            await logout_all(api)


async def test_a_disposition_keyed_after_a_queue_call_is_stored_counted_and_ends_the_wrapup(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path,
) -> None:
    """``*489`` after a queue call: the call's row says ``do-not-call`` by 1001, the caller's
    number is on the global do-not-call list, ``queue status`` (API and CLI) and
    ``callctl_queue_dispositions_total`` count it, the call report shows it, and the queue's
    wrap-up ends there; a second key for the same call and a key without a disposition change
    nothing."""
    wrapup_s = 30
    q = unique_queue("dispo")
    config_file = tmp_path / "c.toml"
    config = one_agent_queue(
        q, wrapup_s, controller_config_file, config_file, asterisk, sipp,
        dispositions='{ 1 = "resolved", 9 = { name = "do-not-call", dnc = true } }')
    api = Api(config)
    offers = f"PJSIP/{AGENT}"

    def state() -> AgentState | None:
        return member_state(controller, q)

    async def stored() -> tuple[str, str | None, str | None]:
        row = await controller.store.fetchone(
            "SELECT call_id, disposition, disposed_by FROM inbound_calls"
            " WHERE queue = :q AND agent_id = :a", {"q": q, "a": AGENT})
        assert row is not None, "the answered call is stored with its agent"
        return row["call_id"], row["disposition"], row["disposed_by"]

    async def counted() -> tuple[float, float]:
        series = await scrape(api)
        return tuple(value(series, "callctl_queue_dispositions_total", queue=q, disposition=d)
                     for d in ("resolved", "do-not-call"))  # type: ignore[return-value]

    async with running_controller(config) as running:
        controller = running.controller
        events = watch_events(controller)
        try:
            await login(api, AGENT)
            sipp.call("5000", HOLD_MS="20000")
            [(call_end, _)] = await wait_for(
                lambda: events.of(AgentComplete, interface=offers), 20, "1001's call to end")
            await wait_for(lambda: state() is AgentState.WRAPUP, 5, "1001 in wrap-up")
            await dial(sipp, asterisk, "*483")  # no disposition on key 3
            call_id, disposition, _ = await stored()
            assert disposition is None and state() is AgentState.WRAPUP

            await dial(sipp, asterisk, "*489")
            assert (await stored())[1:] == ("do-not-call", AGENT)
            await wait_for(lambda: state() is AgentState.AVAILABLE, 5, "1001 available")
            assert time.time() - call_end < wrapup_s, "the disposition ended the wrap-up"
            assert await counted() == (0.0, 1.0)
            status, out = await asyncio.to_thread(cli, config_file, "dnc", "list", "--json")
            assert status == 0, out
            assert [(row["phone"], row["source"]) for row in json.loads(out)] == [
                ("+41441234567", f"disposition do-not-call by agent {AGENT}")]

            await dial(sipp, asterisk, "*481")  # one disposition per call
            assert await stored() == (call_id, "do-not-call", AGENT)
            assert await counted() == (0.0, 1.0)
            _, queues = await api.request("GET", "/api/v1/queues")
            [shown] = [queue for queue in queues["queues"] if queue["queue"] == q]
            assert shown["dispositions_today"] == {"do-not-call": 1}
            status, out = await asyncio.to_thread(cli, config_file, "queue", "status")
            assert status == 0 and f"{q} dispositions today: do-not-call 1" in out, out
            # the call report: the same row by CLI and API, with its seconds
            status, out = await asyncio.to_thread(
                cli, config_file, "queue", "calls", "--queue", q, "--json")
            assert status == 0, out
            [reported] = json.loads(out)
            _, listed = await api.request("GET", f"/api/v1/calls?queue={q}")
            assert listed["calls"] == [reported]
            assert (reported["call_id"], reported["outcome"], reported["agent_id"],
                    reported["disposition"]) == (call_id, "answered", AGENT, "do-not-call")
            assert 1.0 <= reported["talk_seconds"] < 5.0  # the phone talks 1.5 s
            assert 0.0 <= reported["wait_seconds"] < 5.0  # rung at once, answered after 1 s
            status, out = await asyncio.to_thread(cli, config_file, "agent", "stats", "--json")
            assert status == 0, out
            [agent] = [row for row in json.loads(out)["agents"] if row["agent"] == AGENT]
            assert agent["dispositions"] == {"do-not-call": 1}
        finally:
            await logout_all(api)


async def _when(series: Awaitable[Series], ok: Callable[[Series], bool]) -> Series | None:
    got = await series
    return got if ok(got) else None
