"""Feature codes from an agent's phone (sipp with digest auth) on the real Asterisk: ``*45``
logs in and out, ``*462`` pauses with reason 2 (break) in AMI, queue_log and the store, ``*46``
unpauses and clears it; the BLF hints follow; with no controller the phone hears an error.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

from controller.app import Controller
from controller.asterisk.events import AgentCalled, AgentComplete, AgentRingNoAnswer
from controller.config import Config
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
        await wait_for(lambda: "support" in controller.model.queues, 10, "queues in the model")
        assert member(controller) is None

        await dial(sipp, asterisk, "*45")
        await wait_for(lambda: member(controller) is not None, 5, "1001 a member of support")
        assert hint_state(asterisk, "*45") == "InUse"
        assert hint_state(asterisk, "*46") == "Idle"

        await dial(sipp, asterisk, "*462")
        await wait_for(lambda: getattr(member(controller), "paused", False), 5, "1001 paused")
        assert getattr(member(controller), "paused_reason", "") == "break"
        _, listing = await api.request("GET", "/api/v1/agents")
        stored = next(a for a in listing["agents"] if a["agent_id"] == AGENT)
        assert (stored["paused"], stored["pause_reason"]) == (True, "break")
        queue_log = (asterisk.host_path(asterisk.log_dir) / "queue_log").read_text()
        assert f"|support|{AGENT}|PAUSE|break" in queue_log, queue_log[-800:]
        assert hint_state(asterisk, "*46") == "InUse"
        status, metrics = await api.request("GET", "/metrics", token=None)
        assert 'callctl_agents_paused{queue="support",reason="break"} 1.0' in metrics.decode()

        await dial(sipp, asterisk, "*46")
        await wait_for(lambda: not getattr(member(controller), "paused", True), 5,
                       "1001 unpaused")
        _, listing = await api.request("GET", "/api/v1/agents")
        stored = next(a for a in listing["agents"] if a["agent_id"] == AGENT)
        assert (stored["paused"], stored["pause_reason"]) == (False, "")
        assert hint_state(asterisk, "*46") == "Idle"

        # the API goes through the same machine: unpausing again is refused with the reason
        status, body = await api.request("POST", f"/api/v1/agents/{AGENT}/unpause")
        assert (status, body["error"]) == (409, f"agent {AGENT}: not paused")

        await dial(sipp, asterisk, "*45")
        await wait_for(lambda: member(controller) is None, 5, "1001 no longer a member")
        assert hint_state(asterisk, "*45") == "Idle"
    # the history the phone made: logged in, paused for a break (a feature call's length)
    status, out = await asyncio.to_thread(cli, controller_config_file, "agent", "stats",
                                          "--json")
    [row] = [r for r in json.loads(out)["agents"] if r["agent"] == AGENT]
    assert status == 0 and row["logged_in_s"] >= 4 and 1 <= row["paused_s"]["break"] < 10


async def test_without_the_controller_a_feature_code_answers_with_an_error_sound(
    asterisk: AsteriskInstance, sipp: SippPool, tmp_path: Path,
) -> None:
    assert "callctl" not in asterisk.cli("ari show apps")
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


async def test_end_wrapup_makes_the_agent_take_the_next_call_before_the_wrapup_time(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path,
) -> None:
    q = unique_queue("wrapup")
    config = routing(
        controller_config_file,
        inbound_toml(queue_toml(q, members='["1001"]').replace("wrapup = 0", "wrapup = 60"),
                     number("5000", q)),
        tmp_path / "c.toml", asterisk,
    )
    sipp.agent_phones(RING_S="1", TALK_MS="1500")  # answers, talks 1.5 s, hangs up
    api = Api(config)
    async with running_controller(config) as running:
        controller = running.controller
        events = watch_events(controller)
        try:
            await login(api, AGENT)
            sipp.call("5000", HOLD_MS="20000")
            await wait_for(lambda: events.of(AgentComplete, interface=f"PJSIP/{AGENT}"), 20,
                           "1001's first call to end")
            second = sipp.call("5000", HOLD_MS="20000")
            await asyncio.sleep(3)  # app_queue keeps the caller waiting: 1001 is in wrap-up
            assert len(events.of(AgentCalled, interface=f"PJSIP/{AGENT}")) == 1
            await dial(sipp, asterisk, "*47")
            await wait_for(lambda: len(events.of(AgentCalled, interface=f"PJSIP/{AGENT}")) == 2,
                           10, "the waiting caller offered to 1001 before 60 s of wrap-up")
            second.stop()
        finally:
            await logout_all(api)
