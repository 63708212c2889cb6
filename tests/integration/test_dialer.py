"""The predictive dialer on the real stack: nailed-up agents, sipp customers, abandons, stops.

Campaigns are created, filled and started through ``callctl`` against the test store, as an
operator would; the controller runs in-process on the test's loop. The carrier's sipp (the
customers behind the trunk) is the witness of what was dialed: every INVITE it received is
parsed from its message trace, so "never dialed" and "never twice at once" are checked where
the calls arrive, not in the controller's own bookkeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import itertools
import json
import re
import wave
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from controller.asterisk.ami import AmiClient
from controller.cli.main import main as callctl
from controller.config import Config
from controller.logs import configure_logging
from controller.store import open_store
from testbed.asterisk import AGENT_PHONE_IP, AsteriskInstance
from testbed.sipp import Sipp, SippPool
from testbed.tone_pcap import write_tone_pcap

from .harness import Api, running_controller, wait_for, with_sections

AGENTS = ("1001", "1002", "1003", "1004")
# customers: u < ANSWER_UPTO answers, u < BUSY_UPTO is busy, the rest ring until cancelled
QUICK_CUSTOMERS = {
    "ANSWER_UPTO": "0.6", "BUSY_UPTO": "0.9", "RING_MIN_S": "1", "RING_MAX_S": "1",
    "TALK_MS": "1500",
}
ALWAYS_ANSWER = {"ANSWER_UPTO": "1", "BUSY_UPTO": "1", "RING_MIN_S": "1", "RING_MAX_S": "1"}
SAFE_HARBOR_SOUND = "vm-nobodyavail"


def campaign_toml(agents: tuple[str, ...] = AGENTS, **overrides: Any) -> str:
    """A quick campaign: 15 s ring (the legal minimum), no retry delays, no wrap-up."""
    values: dict[str, Any] = {
        "dialing_mode": "predictive", "max_attempts": 3, "ring_timeout_seconds": 15,
        "line_cap": 20, "calls_per_second": 10, "agent_wrapup_seconds": 0,
        # sipp on a loaded machine sometimes loses a dialog (Asterisk's INVITE re-sent after our
        # 200 OK): the call is then up forever in Asterisk and would hold an agent
        "max_call_seconds": 20,
    } | overrides
    lines = ['trunk = "trunk"', 'caller_id = "Callctl <5550100>"', 'default_region = "US"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    lines += [
        "[agents]", f"agent_ids = {json.dumps(list(agents))}",
        "[calling_hours]", "start = 09:00:00", "end = 21:00:00",
        "[retry_delay_minutes]", "busy = 0", "no_answer = 0", "failed = 0", "machine = 0",
        "[abandon]", "recall_gap_hours = 0", f'safe_harbor_sound = "{SAFE_HARBOR_SOUND}"',
    ]
    return "\n".join(lines) + "\n"


def zone_at_local_hour(hour: int, now: datetime | None = None) -> str:
    """An ``Etc/GMT`` zone whose local time is ``hour``:xx now (for in/out-of-hours leads)."""
    now = now or datetime.now(UTC)
    offset = (hour - now.hour + 12) % 24 - 12  # in -12..+11
    # POSIX sign: Etc/GMT-3 is UTC+3
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def phone(index: int) -> str:
    return f"+1212333{index:04d}"


def cli(config_file: Path, *args: str) -> tuple[int, str]:
    """``callctl --config FILE ARGS`` in this process; (exit status, stdout)."""
    out = io.StringIO()
    logging = structlog.get_config()  # callctl configures its own logging: keep the test's
    with contextlib.redirect_stdout(out):
        try:
            status = callctl(["--config", str(config_file), *args])
        except SystemExit as leave:
            status = int(leave.code or 0)
        finally:
            structlog.configure(**logging)
    return status, out.getvalue()


async def acli(config_file: Path, *args: str) -> str:
    """``callctl`` off the loop (it runs its own), failing the test on a non-zero exit."""
    status, out = await asyncio.to_thread(cli, config_file, *args)
    assert status == 0, f"callctl {' '.join(args)} exited {status}: {out}"
    return out


async def setup_campaign(
    config_file: Path, name: str, leads_csv: str, settings: str, work: Path
) -> None:
    """Create the campaign and import its leads with callctl."""
    settings_file, leads_file = work / f"campaign-{name}.toml", work / f"leads-{name}.csv"
    settings_file.write_text(settings)
    leads_file.write_text(leads_csv)
    await acli(config_file, "campaign", "create", name, "--config", str(settings_file))
    await acli(config_file, "campaign", "import", name, str(leads_file))


@dataclass
class CarrierCall:
    """One INVITE dialog seen at the carrier: the number dialed, the caller (the INVITE's From),
    when it began and ended."""

    number: str
    caller: str
    first: datetime
    last: datetime


_TRACE_BLOCK = re.compile(
    r"^-+ (\d{4}-\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+)\s*\n(.*?)(?=^-+ \d{4}-|\Z)", re.M | re.S
)
_CALL_ID = re.compile(r"^Call-ID:\s*(\S+)", re.M | re.I)
_INVITE_TO = re.compile(r"message received \[\d+\] bytes :\s*\n\s*INVITE sip:([^@;>]+)@")
_FROM = re.compile(r"^From:\s*(.*?)\s*$", re.M | re.I)


def carrier_calls(carrier: Sipp) -> list[CarrierCall]:
    """Every dialog the carrier sipp saw, from its message trace."""
    calls: dict[str, CarrierCall] = {}
    for stamp, block in _TRACE_BLOCK.findall(carrier.messages()):
        call_id = _CALL_ID.search(block)
        if call_id is None:
            continue
        at = datetime.fromisoformat(re.sub(r"\s+", " ", stamp))
        invite = _INVITE_TO.search(block)
        call = calls.get(call_id.group(1))
        if call is None and invite is not None:
            caller = _FROM.search(block)
            calls[call_id.group(1)] = CarrierCall(
                invite.group(1), caller.group(1) if caller else "", at, at
            )
        elif call is not None:
            call.last = max(call.last, at)
    return list(calls.values())


def invites_by_number(calls: list[CarrierCall]) -> dict[str, list[CarrierCall]]:
    by_number: dict[str, list[CarrierCall]] = defaultdict(list)
    for call in calls:
        by_number[call.number].append(call)
    for dialogs in by_number.values():
        dialogs.sort(key=lambda c: c.first)
    return by_number


def overlapping(by_number: dict[str, list[CarrierCall]]) -> list[str]:
    """Numbers with two dialogs at the carrier at the same time."""
    return [
        number for number, dialogs in by_number.items()
        if any(b.first < a.last for a, b in itertools.pairwise(dialogs))
    ]


def log_events(stream: io.StringIO, name: str) -> list[dict[str, Any]]:
    events = (json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{"))
    return [e for e in events if e.get("event") == name]


@contextlib.contextmanager
def captured_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    yield stream


async def store_rows(config: Config, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    store = await open_store(config.store.url)
    try:
        return [dict(row) for row in await store.fetchall(sql, params)]
    finally:
        await store.close()


async def attempts_of(config: Config, campaign: str) -> list[dict[str, Any]]:
    return await store_rows(
        config, "SELECT * FROM attempts WHERE campaign = :c ORDER BY started_at", {"c": campaign}
    )


async def open_attempts(config: Config, campaign: str) -> int:
    rows = await store_rows(
        config, "SELECT attempt_id FROM attempts WHERE campaign = :c AND state = 'dialing'",
        {"c": campaign},
    )
    return len(rows)


def in_hours_leads(count: int, first: int = 0) -> str:
    zone = zone_at_local_hour(12)
    return "phone,timezone\n" + "".join(f"{phone(i)},{zone}\n" for i in range(first, count))


async def test_a_connected_dialer_call_is_recorded_under_the_campaign_policy(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path
) -> None:
    recording = f"""
[recording]
root = {json.dumps(str(asterisk.monitor_dir))}
asterisk_root = {json.dumps(str(asterisk.spool_dir / "monitor"))}
min_free_bytes = 0

[recording.campaigns.rec]
record = "all"
"""
    config_file = controller_config_file.with_name("controller-rec.toml")
    config = with_sections(controller_config_file, recording, config_file)
    await setup_campaign(
        config_file, "rec", in_hours_leads(1), campaign_toml(AGENTS[:1]), tmp_path
    )
    # the agent speaks (a tone) and the customer echoes it: a recording needs audio to write
    tone = write_tone_pcap(tmp_path / "agent.pcap", 1000.0, 30.0)
    sipp.start("tone_agent_phone", local_ip=AGENT_PHONE_IP, port=asterisk.ports.agent_phone,
               values={"PCAP": str(tone), "TALK_MS": "60000"})
    sipp.carrier(**ALWAYS_ANSWER, TALK_MS="4000")
    api = Api(config)
    with captured_log() as log:
        async with running_controller(config):
            await acli(config_file, "campaign", "start", "rec")
            [attempt] = await wait_for(
                lambda: store_rows(
                    config, "SELECT * FROM attempts WHERE campaign = 'rec' AND state = 'done'",
                    {},
                ),
                40, "the attempt's result",
            )

            async def complete() -> dict[str, Any] | None:
                code, body = await api.request("GET", f"/api/v1/recordings/{attempt['attempt_id']}")
                return body if code == 200 and body["status"] == "complete" else None

            row = await wait_for(complete, 20, "the recording to be complete")
    # stopping let go of the idle agent's line and its bridge: Asterisk keeps neither
    assert [e["agent_id"] for e in log_events(log, "dialer.agent_released_at_stop")] == [
        AGENTS[0]
    ]
    assert "agent-bridge-" not in asterisk.cli("bridge show all")
    assert attempt["result"] == "human"
    [connected] = log_events(log, "dialer.connected")
    [ended] = log_events(log, "dialer.attempt_ended")
    talk = (
        datetime.fromisoformat(ended["timestamp"]) - datetime.fromisoformat(connected["timestamp"])
    ).total_seconds()
    wav = asterisk.monitor_dir / row["path"]
    with wave.open(str(wav), "rb") as audio:
        seconds = audio.getnframes() / audio.getframerate()
    assert abs(seconds - talk) <= 1.0, (seconds, talk)
    assert 3.0 <= talk <= 5.0  # the customer hangs up 4 s after answering
    assert (row["call_id"], row["direction"], row["campaign"], row["agent_id"]) == (
        attempt["attempt_id"], "outbound", "rec", AGENTS[0]
    )
    assert (row["callee"], row["policy"]) == (phone(0), "campaign:rec")
    assert "5550100" in row["caller"]
    assert row["size_bytes"] == wav.stat().st_size


async def test_dialing_waits_for_agents_stops_at_once_on_pause_and_stop_and_follows_updates(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path
) -> None:
    config_file = controller_config_file
    await setup_campaign(
        config_file, "hold", in_hours_leads(60), campaign_toml(AGENTS[:2]), tmp_path
    )
    carrier = sipp.carrier(**ALWAYS_ANSWER, TALK_MS="3000")
    config = with_sections(config_file, "", config_file)
    async with running_controller(config) as running:
        dialer = running.controller.dialer
        await acli(config_file, "campaign", "start", "hold")
        # no agent phone answers: agents never get ready, nothing is dialed
        await asyncio.sleep(4)
        assert carrier_calls(carrier) == []
        assert await attempts_of(config, "hold") == []

        sipp.agent_phones(RING_S="1", TALK_MS="600000")
        await wait_for(lambda: carrier_calls(carrier), 30, "the first customer call")
        await wait_for(
            lambda: len(carrier_calls(carrier)) >= 3, 30, "a few customer calls"
        )
        paused_at = datetime.now()
        await acli(config_file, "campaign", "pause", "hold")
        await wait_for(lambda: _no_open(config, "hold"), 30, "calls in progress to finish")
        await asyncio.sleep(3)
        after_pause = [c for c in carrier_calls(carrier) if c.first > paused_at]
        assert after_pause == []
        done_while_paused = await attempts_of(config, "hold")
        assert all(a["result"] == "human" for a in done_while_paused)
        # the operator gives it another caller ID and one agent fewer while no call is up: that
        # agent's line is hung up, and every later call has the new caller ID
        machine = dialer.campaigns["hold"]
        second = machine.agents[AGENTS[1]]
        assert second.channel_id in running.controller.model.channels
        updated = tmp_path / "campaign-hold-updated.toml"
        updated.write_text(campaign_toml(AGENTS[:1]).replace("5550100", "5550177"))
        out = await acli(config_file, "campaign", "update", "hold", "--config", str(updated))
        assert out == "campaign 'hold' settings revision 2: caller_id, agents.agent_ids changed\n"
        await wait_for(
            lambda: second.channel_id not in running.controller.model.channels, 15,
            "the line of the agent taken off to be hung up",
        )
        assert machine.agents[AGENTS[0]].state == "ready"

        # a supervisor's desk resumes it over the API: the live runner follows the store alike
        resumed_at = datetime.now()
        code, body = await Api(config).request("POST", "/api/v1/campaigns/hold/resume")
        assert (code, body["to"]) == (200, "running")
        await wait_for(
            lambda: len(carrier_calls(carrier)) > len(done_while_paused), 30,
            "calls again after resume",
        )
        resumed = [c for c in carrier_calls(carrier) if c.first > resumed_at]
        assert resumed and all("<sip:5550177@" in c.caller for c in resumed), resumed
        assert all("<sip:5550100@" in c.caller for c in carrier_calls(carrier)
                   if c.first < paused_at)
        code, status = await Api(config).request("GET", "/api/v1/campaigns/hold", token=None)
        assert (code, status["state"]) == (200, "running")
        stopped_at = datetime.now()
        await acli(config_file, "campaign", "stop", "hold")
        await wait_for(lambda: _no_open(config, "hold"), 30, "calls in progress to finish")
        # the agents' nailed-up legs are released once the last call ended
        await wait_for(
            lambda: not any(c.startswith("agent-") for c in running.controller.model.channels),
            15, "the agents' legs to be hung up",
        )
        await asyncio.sleep(2)
        assert [c for c in carrier_calls(carrier) if c.first > stopped_at] == []
        assert all(leg.state == "gone" for leg in dialer.campaigns["hold"].agents.values())
    attempts = await attempts_of(config, "hold")
    assert len(attempts) == len(carrier_calls(carrier))
    assert all(a["state"] == "done" and a["result"] == "human" for a in attempts)


async def test_an_agent_keys_a_disposition_in_wrapup_which_ends_it_and_lists_the_number(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path
) -> None:
    """The agent's phone presses 9 (RFC 2833) every 2 s from its answer on: ignored while it is
    ready or talking, in wrap-up it marks the call do-not-call, is answered with a tone Asterisk
    plays to the agent's leg, and ends the wrap-up at once, so the next customer is dialed long
    before the 120 s wrap-up would have let it. ``agent stats`` counts both as the agent's
    outbound calls."""
    config_file = controller_config_file
    settings = campaign_toml(AGENTS[:1], agent_wrapup_seconds=120) + (
        '[dispositions.9]\nname = "do-not-call"\nlead = "dnc"\n'
    )
    await setup_campaign(config_file, "dispo", in_hours_leads(2), settings, tmp_path)
    sipp.agent_phones(keys=",".join(["2000:9"] * 45), RING_S="1", TALK_MS="600000")
    sipp.carrier(**ALWAYS_ANSWER, TALK_MS="3000")
    config = with_sections(config_file, "", config_file)
    with captured_log() as log:
        async with running_controller(config):
            await acli(config_file, "campaign", "start", "dispo")

            async def both_disposed() -> list[dict[str, Any]] | None:
                rows = await store_rows(
                    config, "SELECT * FROM attempts WHERE campaign = 'dispo'"
                    " AND disposition IS NOT NULL ORDER BY started_at", {})
                return rows if len(rows) == 2 else None

            attempts = await wait_for(both_disposed, 60, "both calls given their disposition")

            def both_tones() -> list[dict[str, Any]] | None:
                tones = log_events(log, "dialer.key_tone")
                return tones if len(tones) == 2 else None

            # Asterisk played each key's tone to the agent's leg to its end
            tones = await wait_for(both_tones, 10, "both keys' tones played")
            status = json.loads(await acli(config_file, "campaign", "status", "dispo", "--json"))
            printed = await acli(config_file, "campaign", "status", "dispo")
            _, metrics = await Api(config).request("GET", "/metrics", token=None)
            agents = json.loads(await acli(config_file, "agent", "stats", "--json"))["agents"]
            await acli(config_file, "campaign", "export", "dispo", str(tmp_path / "out.csv"))
    assert [(a["result"], a["disposition"], a["disposed_by"]) for a in attempts] == [
        ("human", "do-not-call", AGENTS[0])
    ] * 2
    assert [(e["tone"], e["state"]) for e in tones] == [("taken", "done")] * 2
    keyed = log_events(log, "dialer.disposition")
    assert [(e["attempt_id"], e["key"], e["lead_state"]) for e in keyed] == [
        (a["attempt_id"], "9", "done") for a in attempts
    ]
    listed = await store_rows(config, "SELECT phone, source FROM dnc WHERE scope = '*'", {})
    assert sorted(row["phone"] for row in listed) == [phone(0), phone(1)]
    assert {row["source"] for row in listed} == {f"disposition do-not-call by agent {AGENTS[0]}"}
    assert status["dispositions"] == {"do-not-call": 2}
    assert "disposed: do-not-call 2\n" in printed
    counted = 'callctl_dialer_dispositions_total{campaign="dispo",disposition="do-not-call"} 2.0'
    assert counted in metrics.decode()
    assert status["leads"]["done"] == 2
    # the agent's two campaign calls, from their connects: about 3 s of talk each
    [agent] = [row for row in agents if row["agent"] == AGENTS[0]]
    assert (agent["calls"], agent["outbound"]) == (2, 2)
    assert agent["dispositions"] == {"do-not-call": 2}
    assert 4 <= agent["talk_s"] <= 12
    with (tmp_path / "out.csv").open(newline="") as exported:
        rows = list(csv.DictReader(exported))
    assert [(row["agent"], row["disposition"]) for row in rows] == [
        (AGENTS[0], "do-not-call")] * 2
    assert all(2.0 <= float(row["talk_seconds"]) <= 6.0 for row in rows)


async def test_in_preview_the_one_call_dialed_is_the_one_the_agent_asked_for_with_a_key(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path
) -> None:
    """Preview: the ready agent's phone presses 5 once, 3 s after it answered; of three leads
    exactly one is dialed, answered to that agent, and nothing more while it asks no more."""
    config_file = controller_config_file
    settings = campaign_toml(AGENTS[:1], dialing_mode="preview")
    await setup_campaign(config_file, "ask", in_hours_leads(3), settings, tmp_path)
    sipp.agent_phones(keys="3000:5", RING_S="1", TALK_MS="600000")
    carrier = sipp.carrier(**ALWAYS_ANSWER, TALK_MS="2000")
    config = with_sections(config_file, "", config_file)
    with captured_log() as log:
        async with running_controller(config):
            await acli(config_file, "campaign", "start", "ask")

            async def one_done() -> list[dict[str, Any]] | None:
                rows = await store_rows(
                    config, "SELECT * FROM attempts WHERE campaign = 'ask' AND state = 'done'",
                    {})
                return rows or None

            done = await wait_for(one_done, 60, "the asked-for call to end")
            await asyncio.sleep(5)  # ready again and asking nothing: nothing is dialed
            attempts = await attempts_of(config, "ask")
            status = json.loads(await acli(config_file, "campaign", "status", "ask", "--json"))
    assert [(a["result"], a["agent_id"]) for a in done] == [("human", AGENTS[0])]
    assert len(attempts) == 1 and len(carrier_calls(carrier)) == 1
    assert (status["leads"]["done"], status["leads"]["ready"]) == (1, 2)
    assert [e["tone"] for e in log_events(log, "dialer.key_tone")] == ["taken"]


async def _no_open(config: Config, campaign: str) -> bool:
    return await open_attempts(config, campaign) == 0


async def test_recycled_leads_are_dialed_again_and_numbered_on(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path
) -> None:
    """Three leads busy on their only attempt are finished; recycled by that result while the
    campaign runs, each is dialed exactly once more, as its attempt 2."""
    config_file = controller_config_file
    settings = campaign_toml(AGENTS[:1], dialing_mode="progressive", max_attempts=1)
    await setup_campaign(config_file, "again", in_hours_leads(3), settings, tmp_path)
    sipp.agent_phones(RING_S="1", TALK_MS="600000")
    carrier = sipp.carrier(ANSWER_UPTO="0", BUSY_UPTO="1", RING_MIN_S="1", RING_MAX_S="1")
    config = with_sections(config_file, "", config_file)

    async def closed(count: int) -> bool:
        rows = await store_rows(
            config, "SELECT COUNT(*) AS n FROM attempts WHERE campaign = 'again'"
            " AND state = 'done'", {})
        return int(rows[0]["n"]) == count

    async with running_controller(config):
        await acli(config_file, "campaign", "start", "again")
        await wait_for(lambda: closed(3), 60, "every lead busy once")
        await wait_for(lambda: _no_open(config, "again"), 10, "no call open")
        assert await acli(config_file, "campaign", "recycle", "again", "--result", "busy") == (
            "campaign 'again': recycled 3 lead(s)\n"
        )
        await wait_for(lambda: closed(6), 60, "the recycled leads dialed again")
        # finished again (one attempt since the recycle): the runner claims nothing more
        await asyncio.sleep(3)
        attempts = await attempts_of(config, "again")
    assert sorted((a["phone"], a["attempt_no"], a["result"]) for a in attempts) == [
        (phone(i), attempt, "busy") for i in range(3) for attempt in (1, 2)
    ]
    seen = invites_by_number(carrier_calls(carrier))
    assert sorted(len(dialogs) for dialogs in seen.values()) == [2, 2, 2]
    assert overlapping(seen) == []


async def test_an_answer_with_no_ready_agent_hears_the_safe_harbor_message_and_is_abandoned(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path
) -> None:
    """The only agent leaves while the customer rings: the answer finds nobody for 2 s."""
    config_file = controller_config_file
    await setup_campaign(
        config_file, "harbor", in_hours_leads(1), campaign_toml(AGENTS[:1]), tmp_path
    )
    sipp.agent_phones(RING_S="1", TALK_MS="2500")
    sipp.carrier(ANSWER_UPTO="1", BUSY_UPTO="1", RING_MIN_S="5", RING_MAX_S="5")
    config = with_sections(config_file, "", config_file)
    applications: list[tuple[str, str, str]] = []

    def on_event(event: Any) -> None:
        if event.get("Event") == "Newexten":
            applications.append(
                (event.get("Uniqueid", ""), event.get("Application", ""), event.get("AppData", ""))
            )

    async def ignore(_up: bool) -> None:
        return None

    listener = AmiClient(config.ami, on_event, ignore)
    listening = asyncio.create_task(listener.run())
    try:
        with captured_log() as log:
            async with running_controller(config):
                await wait_for(lambda: listener.connected, 10, "the test's AMI listener")
                await acli(config_file, "campaign", "start", "harbor")
                [attempt] = await wait_for(
                    lambda: store_rows(
                        config,
                        "SELECT * FROM attempts WHERE campaign = 'harbor' AND state = 'done'",
                        {},
                    ),
                    40, "the attempt's result",
                )
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
    assert attempt["result"] == "abandoned"
    assert (attempt["attempt_id"], "Playback", SAFE_HARBOR_SOUND) in applications
    [abandoned] = log_events(log, "dialer.abandoned")
    assert abandoned["attempt_id"] == attempt["attempt_id"]
    assert log_events(log, "dialer.connected") == []
    [lead] = await store_rows(
        config, "SELECT * FROM leads WHERE campaign = 'harbor'", {}
    )
    assert lead["last_result"] == "abandoned" and lead["last_abandoned_at"]
