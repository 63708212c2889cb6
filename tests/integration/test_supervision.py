"""Supervision on the real Asterisk: a supervisor of another team is refused (API 403, and on
the phone), the agent's team supervisor is rung by ``callctl supervise whisper`` into ChanSpy on
the agent's exact channel, and every attempt is audited with its start and end."""

from __future__ import annotations

import asyncio
from pathlib import Path

from controller.config import load_config
from testbed.asterisk import AsteriskInstance
from testbed.sipp import SippPool

from .harness import Api, running_controller, wait_for
from .test_inbound import cli, login, logout_all

AGENT = "1001"  # team support (supervisor 1003); 1005 supervises sales


def channel_apps(asterisk: AsteriskInstance) -> dict[str, tuple[str, str]]:
    """Channel name -> (application, data) of every live channel."""
    apps = {}
    for line in asterisk.cli("core show channels concise").splitlines():
        fields = line.split("!")
        if len(fields) > 6:
            apps[fields[0]] = (fields[5], fields[6])
    return apps


async def test_only_the_team_supervisor_whispers_and_every_session_is_audited(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool,
) -> None:
    controller_config = load_config(controller_config_file)
    api = Api(controller_config)
    sipp.agent_phones(RING_S="1", TALK_MS="40000")
    async with running_controller(controller_config) as running:
        controller = running.controller
        try:
            await login(api, AGENT)
            await wait_for(lambda: f"PJSIP/{AGENT}" in controller.model.queues["support"].members,
                           10, "1001 logged in")
            customer = sipp.call("5000", HOLD_MS="30000")
            agent_channel = await wait_for(lambda: next(
                (name for name in channel_apps(asterisk) if name.startswith(f"PJSIP/{AGENT}-")),
                None), 15, "1001 on a call")
            await wait_for(lambda: asterisk.cli(f"core show channel {agent_channel}").count(
                "State: Up"), 10, "the agent's call answered")

            status, body = await api.request("POST", "/api/v1/supervise", {
                "supervisor": "1005", "agent": AGENT, "mode": "whisper"})
            assert (status, body["error"]) == (403, "1005 is not a supervisor of agent 1001's "
                                                    "team")
            refused = sipp.agent_call("1005", asterisk.secrets.agent_passwords["1005"],
                                      f"*51{AGENT}", HOLD_MS="10000")
            assert (await asyncio.to_thread(refused.wait, 20)).successful == 1, refused.output()

            status, out = await asyncio.to_thread(
                cli, controller_config_file, "supervise", "whisper",
                "--supervisor", "1003", "--agent", AGENT)
            assert status == 0 and "ringing 1003" in out
            spy = await wait_for(lambda: next(
                ((name, data) for name, (app, data) in channel_apps(asterisk).items()
                 if name.startswith("PJSIP/1003-") and app == "ChanSpy"), None), 15,
                "1003 in ChanSpy")
            # the exact channel of the agent's call, whisper mode
            assert spy[1] == f"{agent_channel},qEw", spy
            asterisk.cli(f"channel request hangup {spy[0]}")
            status, body = await wait_for(lambda: _ended(api), 10, "the session to end")
        finally:
            await logout_all(api)
    sessions = body["sessions"]
    assert [(s["supervisor"], s["agent_id"], s["refused"] is None) for s in sessions] == [
        ("1005", AGENT, False), ("1003", AGENT, True)]
    assert "not a supervisor" in sessions[0]["refused"]
    assert sessions[1]["mode"] == "whisper" and sessions[1]["spied_channel"] == agent_channel
    assert sessions[1]["ended_at"] > sessions[1]["started_at"]
    customer.stop()


async def _ended(api: Api) -> tuple[int, dict[str, list[dict[str, str]]]] | None:
    status, body = await api.request("GET", "/api/v1/supervision")
    sessions = body["sessions"]
    if len(sessions) == 2 and sessions[1]["ended_at"]:
        return status, body
    return None
