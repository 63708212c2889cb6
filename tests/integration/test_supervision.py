"""Supervision on the real Asterisk: a supervisor of another team is refused (API 403, and on
the phone), the agent's team supervisor is rung by ``callctl supervise whisper`` into ChanSpy on
the agent's exact channel, and every attempt is audited with its start and end."""

from __future__ import annotations

import array
import asyncio
import sys
import wave
from pathlib import Path

from controller.config import load_config
from testbed.asterisk import AsteriskInstance
from testbed.sipp import SippPool
from testbed.tone_pcap import write_tone_pcap

from .harness import Api, running_controller, wait_for
from .test_inbound import cli, login, logout_all
from .test_recording import AGENT_HZ, CALLER_HZ, tone_power

AGENT = "1001"  # team support (supervisor 1003); 1005 supervises sales
SUPERVISOR_HZ = 1600.0


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


async def test_a_whisper_reaches_the_agent_and_not_the_customer(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path,
) -> None:
    """What a phone heard is measured by making it echo and recording what comes back from it
    (MixMonitor r(), the audio read from that channel): ChanSpy whispers through an audiohook
    that a recording of the audio sent to a channel does not see. First the agent's phone
    echoes (a customer calls in playing 400 Hz), then the customer's (the agent calls out
    playing 1000 Hz); the supervisor whispers 1600 Hz both times."""
    tones = {name: write_tone_pcap(tmp_path / f"{name}.pcap", hz, 30.0, ssrc=0x5EED + i)
             for i, (name, hz) in enumerate((("customer", CALLER_HZ), ("agent", AGENT_HZ),
                                             ("supervisor", SUPERVISOR_HZ)))}
    config = load_config(controller_config_file)
    api = Api(config)
    monitor = asterisk.monitor_dir
    async with running_controller(config) as running:
        try:
            sipp.agent_phones(RING_S="1", TALK_MS="30000")  # echoes
            await login(api, AGENT)
            await wait_for(lambda: f"PJSIP/{AGENT}" in
                           running.controller.model.queues["support"].members, 10, "1001 in")
            sipp.start("tone_caller", local_ip="127.0.0.2", uac=True, service="5000", calls=1,
                       values={"PCAP": str(tones["customer"]), "HOLD_MS": "30000"})
            await whisper_recorded(asterisk, sipp, tones["supervisor"], "agent", "in")
            asterisk.hang_up_all()
            await logout_all(api)

            sipp.carrier(ANSWER_UPTO="1", BUSY_UPTO="1", RING_MIN_S="0", RING_MAX_S="0",
                         TALK_MS="30000")  # echoes
            sipp.agent_call(AGENT, asterisk.secrets.agent_passwords[AGENT], "902079460000",
                            HOLD_MS="30000", PCAP=str(tones["agent"]))
            await whisper_recorded(asterisk, sipp, tones["supervisor"], "customer", "out")
        finally:
            await logout_all(api)
    agent_heard = await wait_for(lambda: _samples(monitor / "in-agent-heard.wav"), 5, "a file")
    customer_heard = await wait_for(lambda: _samples(monitor / "out-customer-heard.wav"), 5,
                                    "a file")
    for name in ("in-agent", "out-customer"):
        for kind in ("all", "heard"):
            (monitor / f"{name}-{kind}.wav").unlink(missing_ok=True)
    # the agent heard the customer and the supervisor; the customer the agent, not the whisper
    assert tone_power(agent_heard, CALLER_HZ) > 1000
    assert tone_power(agent_heard, SUPERVISOR_HZ) > 0.05 * tone_power(agent_heard, CALLER_HZ)
    assert tone_power(customer_heard, AGENT_HZ) > 1000
    assert tone_power(customer_heard, SUPERVISOR_HZ) < 0.001 * tone_power(customer_heard,
                                                                            AGENT_HZ)


async def whisper_recorded(asterisk: AsteriskInstance, sipp: SippPool, tone: Path, side: str,
                           name: str) -> None:
    """Once the call is up, 1003 whispers to 1001 for 4 s while ``side``'s channel (whose
    phone echoes) is recorded into ``NAME-SIDE-heard.wav``."""
    legs = await wait_for(lambda: _call_legs(asterisk), 15, "the call to be answered")
    await asyncio.sleep(1)
    supervisor = sipp.agent_call("1003", asterisk.secrets.agent_passwords["1003"],
                                 f"*52{AGENT}", HOLD_MS="15000", PCAP=str(tone))
    await wait_for(lambda: any(app == "ChanSpy" for app, _ in channel_apps(asterisk).values()),
                   15, "the whisper")
    inside = asterisk.spool_dir / "monitor"  # the path as Asterisk sees it
    asterisk.cli(f"mixmonitor start {legs[side]} {name}-{side}-all.wav,"
                 f"r({inside}/{name}-{side}-heard.wav)")
    await asyncio.sleep(4)
    asterisk.cli(f"mixmonitor stop {legs[side]}")
    supervisor.stop()


def _call_legs(asterisk: AsteriskInstance) -> dict[str, str] | None:
    """The customer's (trunk) and the agent's channels once both are up."""
    names = [name for name in channel_apps(asterisk)
             if "Up" in asterisk.cli(f"core show channel {name}").split("State: ", 1)[-1][:4]]
    trunk = next((n for n in names if n.startswith("PJSIP/trunk-")), None)
    agent = next((n for n in names if n.startswith(f"PJSIP/{AGENT}-")), None)
    return {"customer": trunk, "agent": agent} if trunk and agent else None


def _samples(path: Path) -> array.array[int] | None:
    if not path.exists() or path.stat().st_size < 8000:
        return None
    with wave.open(str(path), "rb") as wav:
        samples = array.array("h", wav.readframes(wav.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples
