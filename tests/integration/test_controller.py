"""The controller core against the real Asterisk: health, state model, resync, originate safety."""

from __future__ import annotations

import asyncio
import io
import json
import time

from controller.asterisk.ami import AmiClient, AmiDisconnected
from controller.config import Config, NodeConfig
from controller.logs import configure_logging
from testbed.asterisk import AsteriskInstance
from testbed.sipp import SippPool

from .harness import Api, running_controller, wait_for


async def test_ready_controller_reports_health_and_metrics(
    asterisk: AsteriskInstance, controller_config: Config
) -> None:
    async with running_controller(controller_config):
        api = Api(controller_config)
        status, health = await api.request("GET", "/healthz", token=None)
        assert status == 200
        assert health == {"status": "ok", "ami": True, "ari": True, "store": True}
        status, body = await api.request("GET", "/metrics", token=None)
        assert status == 200
        text = body.decode() if isinstance(body, bytes) else str(body)
        assert 'callctl_up{component="ami"} 1.0' in text
        assert 'callctl_up{component="ari"} 1.0' in text


async def test_writes_need_the_bearer_token(
    asterisk: AsteriskInstance, controller_config: Config
) -> None:
    async with running_controller(controller_config):
        api = Api(controller_config)
        for token in (None, "wrong"):
            status, body = await api.request("POST", "/api/v1/agents/1001/login", {}, token=token)
            assert status == 401
            assert "token" in body["error"]
        status, body = await api.request("POST", "/api/v1/agents/x!/login", {})
        assert status == 400


async def test_a_did_call_is_seen_in_the_model_the_log_and_the_store(
    asterisk: AsteriskInstance, controller_config: Config, sipp: SippPool
) -> None:
    """The demo routing: 5000 -> support, always open; nobody logged in, so the caller waits."""
    config = controller_config
    log = io.StringIO()
    configure_logging("info", stream=log)
    async with running_controller(config) as running:
        controller = running.controller
        caller = sipp.call("5000", HOLD_MS="3000")
        queue = await wait_for(
            lambda: controller.model.queues.get("support")
            and controller.model.queues["support"].callers,
            10, "the caller to wait in the support queue",
        )
        [waiting] = queue.values()
        assert waiting.channel.startswith("PJSIP/trunk-")
        assert waiting.uniqueid in controller.model.channels
        await asyncio.to_thread(caller.wait, 30)
        row = await wait_for(
            lambda: controller.store.fetchone(
                "SELECT * FROM inbound_calls WHERE call_id = :id AND outcome IS NOT NULL",
                {"id": waiting.uniqueid},
            ),
            10, "the call's outcome row",
        )
    assert row["did"] == "5000"
    assert row["queue"] == "support"
    assert row["outcome"] == "abandoned"  # no agent logged in; the caller hung up after 3 s
    events = [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]
    routed = [e for e in events if e["event"] == "call.routed"]
    assert routed and routed[0]["call_id"] == waiting.uniqueid and routed[0]["queue"] == "support"
    assert any(e["event"] == "call.ended" and e["call_id"] == waiting.uniqueid for e in events)


async def test_asterisk_restart_goes_503_then_200_and_resyncs(
    asterisk: AsteriskInstance, controller_config: Config
) -> None:
    api = Api(controller_config)
    async with running_controller(controller_config) as running:
        controller = running.controller
        await asyncio.to_thread(asterisk.stop)
        await wait_for(lambda: _status(api, 503), 10, "healthz to report 503")
        _, health = await api.request("GET", "/healthz", token=None)
        assert health["ami"] is False and health["ari"] is False and health["store"] is True

        await asyncio.to_thread(asterisk.start)
        ami_answered = time.monotonic()
        # a member that appears while the controller is still reconnecting
        asterisk.cli("queue add member PJSIP/1004 to support")
        await wait_for(lambda: _status(api, 200), 5.0, "healthz 200 within 5 s of AMI answering")
        recovered_in = time.monotonic() - ami_answered
        assert recovered_in <= 5.0
        support = controller.model.queues["support"]
        assert "PJSIP/1004" in support.members
        _, listing = await api.request("GET", "/api/v1/agents")
        agents = {a["agent_id"]: a for a in listing["agents"]}
        assert agents["1004"]["logged_in"] is True  # adopted into the store by reconciliation
        asterisk.cli("queue remove member PJSIP/1004 from support")


async def test_a_caller_waiting_through_an_asterisk_restart_is_stored_node_lost(
    asterisk: AsteriskInstance, controller_config: Config, sipp: SippPool
) -> None:
    """The Asterisk crashes (SIGKILL) and is started again faster than ``node.lost_after``
    (here 60 s, so only the restart can tell): back on AMI, its start time has changed, so the
    call the controller followed is gone with the old Asterisk and its row ends ``node_lost``,
    counted once."""
    config = controller_config.model_copy(update={"node": NodeConfig(lost_after=60.0)})
    async with running_controller(config) as running:
        controller = running.controller
        caller = sipp.call("5000", HOLD_MS="60000")
        try:
            queue = await wait_for(
                lambda: controller.model.queues.get("support")
                and controller.model.queues["support"].callers,
                10, "the caller to wait in the support queue",
            )
            [waiting] = queue.values()
            assert asterisk.is_running()
            await asyncio.to_thread(asterisk.kill)  # a crash: no Hangup reaches the controller
            await asyncio.to_thread(asterisk.start)
            row = await wait_for(
                lambda: controller.store.fetchone(
                    "SELECT * FROM inbound_calls WHERE call_id = :id AND ended_at IS NOT NULL",
                    {"id": waiting.uniqueid},
                ),
                15, "the call's row to end",
            )
        finally:
            caller.stop()
        counted = controller.metrics.registry.get_sample_value(
            "callctl_queue_calls_total", {"queue": "support", "outcome": "node_lost"})
    assert row["outcome"] == "node_lost"
    assert row["reason"].startswith("Asterisk restarted"), row["reason"]
    assert row["node"] == config.node_name
    assert counted == 1


async def _status(api: Api, expected: int) -> bool:
    try:
        status, _ = await api.request("GET", "/healthz", token=None)
    except Exception:
        return False
    return status == expected


async def test_a_forced_ami_disconnect_never_sends_an_originate_twice(
    asterisk: AsteriskInstance, controller_config: Config, sipp: SippPool
) -> None:
    """panoramisk re-sends unanswered actions after a reconnect; our wrapper must not."""
    phones = sipp.agent_phones(RING_S="1", TALK_MS="2000")
    connections: list[bool] = []

    async def on_connection(up: bool) -> None:
        connections.append(up)

    client = AmiClient(controller_config.ami, lambda _event: None, on_connection)
    runner = asyncio.create_task(client.run())
    try:
        await wait_for(lambda: client.connected, 10, "AMI to connect")
        originate = asyncio.create_task(
            client.originate("PJSIP/1003", "dup-check-1", application="Wait", data="2",
                             timeout_s=10)
        )
        await asyncio.sleep(0)  # the action is written to the socket
        client.force_reconnect()
        try:
            await originate
        except AmiDisconnected:
            pass  # the answer was lost with the connection: the caller must not retry blindly
        await wait_for(lambda: connections.count(True) >= 2, 10, "the AMI reconnect")
        await asyncio.sleep(4)  # long enough for any re-sent Originate to ring the phone again
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    # every channel the Originate created is one INVITE at the phone
    invites = phones.received_requests().count("INVITE")
    assert invites == 1, phones.messages()
