"""Supervision on the real Asterisk: a supervisor of another team is refused (API 403, and on
the phone), the agent's team supervisor is rung by ``callctl supervise whisper`` into ChanSpy on
the agent's exact channel, and every attempt is audited with its start and end. What each mode
lets whom hear is measured on tones (whisper: the agent alone hears the supervisor; barge: all
three hear each other; listen: the supervisor hears both sides, no one hears it)."""

from __future__ import annotations

import array
import asyncio
import sys
import wave
from pathlib import Path

from controller.config import load_config
from testbed.asterisk import AGENT_PHONE_IP, AsteriskInstance
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
    # refused by the API, refused on the phone, the whisper
    assert [(s["supervisor"], s["agent_id"], s["refused"] is None) for s in sessions] == [
        ("1005", AGENT, False), ("1005", AGENT, False), ("1003", AGENT, True)]
    assert all("not a supervisor" in s["refused"] for s in sessions[:2])
    assert [s["mode"] for s in sessions[:2]] == ["whisper", "listen"]
    whisper = sessions[2]
    assert whisper["mode"] == "whisper" and whisper["spied_channel"] == agent_channel
    assert whisper["ended_at"] > whisper["started_at"]
    customer.stop()


async def _ended(api: Api) -> tuple[int, dict[str, list[dict[str, str]]]] | None:
    status, body = await api.request("GET", "/api/v1/supervision")
    sessions = body["sessions"]
    if len(sessions) == 3 and sessions[2]["ended_at"]:
        return status, body
    return None


async def test_whisper_reaches_the_agent_alone_barge_both_and_listen_neither(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path,
) -> None:
    """What a phone heard is measured by making it echo and recording what comes back from it
    (MixMonitor r(), the audio read from that channel): ChanSpy whispers through an audiohook
    that a recording of the audio sent to a channel does not see. First the agent's phone
    echoes (a customer calls in playing 400 Hz), then the customer's (the agent calls out
    playing 1000 Hz); in each call the supervisor, playing 1600 Hz, whispers, then barges (and
    listens, in the second)."""
    tones = tone_pcaps(tmp_path)
    config = load_config(controller_config_file)
    api = Api(config)
    async with running_controller(config) as running:
        try:
            sipp.agent_phones(RING_S="1", TALK_MS="40000")  # echoes
            await login(api, AGENT)
            await wait_for(lambda: f"PJSIP/{AGENT}" in
                           running.controller.model.queues["support"].members, 10, "1001 in")
            sipp.start("tone_caller", local_ip="127.0.0.2", uac=True, service="5000", calls=1,
                       values={"PCAP": str(tones["customer"]), "HOLD_MS": "40000"})
            agent_heard = {mode: await spied(asterisk, sipp, tones["supervisor"], mode, "agent",
                                             "r") for mode in ("whisper", "barge")}
            asterisk.hang_up_all()
            await logout_all(api)

            sipp.carrier(ANSWER_UPTO="1", BUSY_UPTO="1", RING_MIN_S="0", RING_MAX_S="0",
                         TALK_MS="40000")  # echoes
            sipp.agent_call(AGENT, asterisk.secrets.agent_passwords[AGENT], "902079460000",
                            HOLD_MS="40000", PCAP=str(tones["agent"]))
            customer_heard = {
                mode: await spied(asterisk, sipp, tones["supervisor"], mode, "customer", "r")
                for mode in ("whisper", "barge", "listen")}
        finally:
            await logout_all(api)
    for mode, heard in agent_heard.items():  # the agent heard the customer and the supervisor
        assert tone_power(heard, CALLER_HZ) > 1000, mode
        assert tone_power(heard, SUPERVISOR_HZ) > 0.05 * tone_power(heard, CALLER_HZ), mode
    for mode, heard in customer_heard.items():  # the customer heard the agent ...
        assert tone_power(heard, AGENT_HZ) > 1000, mode
    # ... and the supervisor only when barging
    barge = customer_heard.pop("barge")
    assert tone_power(barge, SUPERVISOR_HZ) > 0.05 * tone_power(barge, AGENT_HZ)
    for mode, heard in customer_heard.items():
        assert tone_power(heard, SUPERVISOR_HZ) < 0.001 * tone_power(heard, AGENT_HZ), mode


async def test_listening_and_barging_the_supervisor_hears_both_sides(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path,
) -> None:
    """The customer calls in playing 400 Hz, the agent's phone answers playing 1000 Hz; what
    is sent to the supervisor's phone (MixMonitor t() on its channel: ChanSpy writes the spied
    audio to it like any frame) holds both, listening and barging."""
    tones = tone_pcaps(tmp_path)
    config = load_config(controller_config_file)
    api = Api(config)
    async with running_controller(config) as running:
        try:
            sipp.start("tone_agent_phone", local_ip=AGENT_PHONE_IP,
                       port=asterisk.ports.agent_phone,
                       values={"PCAP": str(tones["agent"]), "TALK_MS": "30000"})
            await login(api, AGENT)
            await wait_for(lambda: f"PJSIP/{AGENT}" in
                           running.controller.model.queues["support"].members, 10, "1001 in")
            sipp.start("tone_caller", local_ip="127.0.0.2", uac=True, service="5000", calls=1,
                       values={"PCAP": str(tones["customer"]), "HOLD_MS": "30000"})
            supervisor_heard = {
                mode: await spied(asterisk, sipp, tones["supervisor"], mode, "supervisor", "t")
                for mode in ("listen", "barge")}
        finally:
            await logout_all(api)
    for mode, heard in supervisor_heard.items():
        assert tone_power(heard, CALLER_HZ) > 1000, mode
        assert tone_power(heard, AGENT_HZ) > 1000, mode


def tone_pcaps(folder: Path) -> dict[str, Path]:
    """Each party's tone: the customer 400 Hz, the agent 1000 Hz, the supervisor 1600 Hz."""
    return {name: write_tone_pcap(folder / f"{name}.pcap", hz, 40.0, ssrc=0x5EED + i)
            for i, (name, hz) in enumerate((("customer", CALLER_HZ), ("agent", AGENT_HZ),
                                            ("supervisor", SUPERVISOR_HZ)))}


MODE_CODES = {"listen": "*51", "whisper": "*52", "barge": "*53"}


async def spied(asterisk: AsteriskInstance, sipp: SippPool, tone: Path, mode: str, leg: str,
                direction: str) -> array.array[int]:
    """Once the call is up, 1003 (playing ``tone``) supervises 1001 in ``mode`` for 3 s while
    ``leg`` (customer, agent or supervisor) is recorded in ``direction`` (MixMonitor ``r``:
    what its phone sends, ``t``: what it is sent); the supervisor then hangs up. Returns the
    recording's samples."""
    legs = await wait_for(lambda: _call_legs(asterisk), 15, "the call to be answered")
    await asyncio.sleep(1)
    supervisor = sipp.agent_call("1003", asterisk.secrets.agent_passwords["1003"],
                                 f"{MODE_CODES[mode]}{AGENT}", HOLD_MS="15000", PCAP=str(tone))
    spy = await wait_for(lambda: next((name for name, (app, _) in channel_apps(asterisk).items()
                                       if app == "ChanSpy"), None), 15, f"the {mode}")
    channel = spy if leg == "supervisor" else legs[leg]
    name = f"{mode}-{leg}-{direction}"
    monitor = asterisk.monitor_dir
    inside = asterisk.spool_dir / "monitor"  # the path as Asterisk sees it
    asterisk.cli(f"mixmonitor start {channel} {name}-all.wav,"
                 f"{direction}({inside}/{name}.wav)")
    await asyncio.sleep(3)
    asterisk.cli(f"mixmonitor stop {channel}")
    asterisk.cli(f"channel request hangup {spy}")
    await asyncio.to_thread(supervisor.wait, 10)
    await wait_for(lambda: spy not in channel_apps(asterisk), 5, "the supervisor gone")
    try:
        return await wait_for(lambda: _samples(monitor / f"{name}.wav"), 5, f"{name}.wav")
    finally:
        for file in (f"{name}.wav", f"{name}-all.wav"):
            (monitor / file).unlink(missing_ok=True)


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
