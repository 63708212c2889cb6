"""sipp processes for the testbed: callers, agent phones, the carrier's customers.

Each ``Sipp`` renders one packaged scenario (``testbed/scenarios/*.xml``, ``@NAME@`` values)
into its own work directory, binds its own loopback address and ports (``-i/-mi``, ``-p/-mp``)
and writes statistics (``-trace_stat``), errors and the full message trace there. ``wait``
bounds a UAC run in time; ``stop`` kills a UAS at teardown and never leaves a process behind.
Counters come from the statistics CSV, SIP codes seen from the message trace.
"""

from __future__ import annotations

import csv
import itertools
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from testbed.asterisk import AGENT_PHONE_IP, CARRIER_IP, test_slot
from testbed.render import render
from testbed.tone_pcap import DtmfStream, write_dtmf_pcap

# Agent phones placing calls: not AGENT_PHONE_IP, whose port belongs to the answering UAS.
AGENT_CALLER_IP = "127.0.0.4"

SIPP_BINARY = "sipp"
STOP_GRACE_S = 5.0  # how long a stopped sipp may take to quit before it is killed
STATS_FILE = "stats.csv"
MESSAGES_FILE = "messages.log"
ERRORS_FILE = "errors.log"
# Scenario defaults; callers override any of them through ``values``.
SIPP_PCAP = "/usr/share/sip-tester/g711a.pcap"  # ~8 s of PCMA speech shipped with sipp
SCENARIO_DEFAULTS = {
    "caller": {"CALLER": "0441234567", "HOLD_MS": "5000"},
    "agent_call": {"HOLD_MS": "5000", "PCAP": SIPP_PCAP},
    "agent_phone": {"RING_S": "1", "TALK_MS": "30000", "KEYS": ""},
    "customer": {
        "ANSWER_UPTO": "0.3", "BUSY_UPTO": "0.5", "RING_MIN_S": "2", "RING_MAX_S": "15",
        "TALK_MS": "20000",
    },
    "demo_agent_phone": {"RING_S": "1", "TALK_MIN_S": "20", "TALK_MAX_S": "90",
                         "CAMPAIGN": "demo-outbound"},
    "demo_customer": {
        "HUMAN_UPTO": "0.35", "MACHINE_UPTO": "0.5", "BUSY_UPTO": "0.65", "RING_MIN_S": "2",
        "RING_MAX_S": "20", "TALK_MIN_S": "20", "TALK_MAX_S": "90",
        "HUMAN_PCAP": SIPP_PCAP, "MACHINE_PCAP": SIPP_PCAP,
    },
    "tone_agent_phone": {"PCAP": SIPP_PCAP, "TALK_MS": "30000"},
    "tone_caller": {"CALLER": "0441234567", "HOLD_MS": "5000", "PCAP": SIPP_PCAP},
    "dtmf_caller": {"CALLER": "0441234567", "HOLD_MS": "5000", "KEYS": ""},
    "callback_customer": {"RING_S": "1", "TALK_MS": "20000", "KEYS": ""},
    "register": {"CONTACT": "sip:1001@127.0.0.1:5060", "EXPIRES": "300"},
    # no greeting: the call is answered and waits for the BYE (testbed.greetings fills them)
    "greeting_customer": {"GREETINGS": '  <nop next="talk"/>', "TALK_MS": "20000"},
}
_RECEIVED = r"^\S+ message received \[\d+\] bytes :\s*\n\s*"
_RECEIVED_STATUS = re.compile(_RECEIVED + r"SIP/2\.0 (\d{3})", re.M)
_RECEIVED_REQUEST = re.compile(_RECEIVED + r"([A-Z]+) sip:", re.M)
_TRACE_SEPARATOR = re.compile(r"^-{20,} .*$", re.M)
_CALL_ID = re.compile(r"^Call-ID: *(\S+)", re.M)
_CSEQ = re.compile(r"^CSeq: *(\d+) ", re.M)
# one message of the trace: the separator line with its time, then the message
_STAMPED = re.compile(
    r"^-{20,} (?P<at>\d{4}-\d\d-\d\d\s+[\d:.]+)\s*$\n(?P<body>.*?)(?=^-{20,} |\Z)", re.M | re.S)
_SENT_INVITE = re.compile(r"message sent.*?\n\s*INVITE ", re.S)
_RECEIVED_INVITE_OK = re.compile(r"message received.*?\n\s*SIP/2\.0 200.*^CSeq: *\d+ INVITE",
                                 re.S | re.M)


def key_steps(steps: str, pcap_dir: Path) -> str:
    """Scenario steps for ``@KEYS@``: ``"3000:1,6000:0441234567#"`` waits 3 s then presses 1,
    waits 6 s then keys the number and ``#`` (RFC 2833, one capture per run of keys written
    into ``pcap_dir``). Every wait ends early on a BYE, which goes to the scenario's ``bye``."""
    lines: list[str] = []
    pcap_dir.mkdir(parents=True, exist_ok=True)
    stream = DtmfStream()
    for index, step in enumerate(filter(None, steps.split(","))):
        delay, _, keys = step.partition(":")
        mark = f"key{index}"
        lines.append(
            f'  <recv request="BYE" timeout="{int(delay)}" ontimeout="{mark}" next="bye"/>'
        )
        lines.append(f'  <label id="{mark}"/>')
        if keys:
            pcap = write_dtmf_pcap(pcap_dir / f"keys-{index}.pcap", keys, stream)
            lines.append(f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
    return "\n".join(lines)


class SippError(RuntimeError):
    """sipp could not start or did not finish in time."""


@dataclass(frozen=True)
class SippStats:
    created: int
    successful: int
    failed: int


SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


def scenario_text(name: str) -> str:
    return (SCENARIO_DIR / f"{name}.xml").read_text()


class Sipp:
    """One sipp process running one scenario.

    ``target`` (``host:port``) makes it a UAC towards Asterisk; without it, it is a UAS
    listening on ``local_ip:port``. ``calls`` (``-m``) ends a UAC after that many calls.
    """

    def __init__(
        self, scenario: str, work_dir: Path, *, local_ip: str, port: int, media_port: int,
        target: str | None = None, service: str | None = None, calls: int | None = None,
        rate: float | None = None, values: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.scenario = scenario
        self.work_dir = work_dir
        self.local_ip = local_ip
        self.port = port
        self.media_port = media_port
        self.target = target
        self.service = service
        self.calls = calls
        self.rate = rate
        self.values = {**SCENARIO_DEFAULTS.get(scenario, {}), **(values or {})}
        self.extra_args = tuple(extra_args)
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        directory = self.work_dir
        args = [
            SIPP_BINARY, "-sf", str(directory / f"{self.scenario}.xml"),
            "-i", self.local_ip, "-mi", self.local_ip,
            "-p", str(self.port), "-mp", str(self.media_port),
            # a failed call just ends: no BYE/CANCEL towards a peer that refused it
            "-default_behaviors", "all,-bye",
            "-nostdin", "-trace_stat", "-stf", str(directory / STATS_FILE), "-fd", "1",
            "-trace_err", "-error_file", str(directory / ERRORS_FILE),
            "-trace_msg", "-message_file", str(directory / MESSAGES_FILE),
        ]
        if self.service:
            args += ["-s", self.service]
        if self.calls is not None:
            args += ["-m", str(self.calls)]
        if self.rate is not None:
            args += ["-r", str(self.rate)]
        args += self.extra_args
        if self.target:
            args.append(self.target)
        return args

    def start(self) -> Sipp:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        text = render(scenario_text(self.scenario), self.values, f"{self.scenario}.xml")
        (self.work_dir / f"{self.scenario}.xml").write_text(text)
        with (self.work_dir / "sipp.out").open("wb") as out:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self.work_dir, start_new_session=True,
            )
        time.sleep(0.2)  # let it bind before the test sends anything its way
        # 0: all calls succeeded, 1: some failed (a short UAC run may already be over)
        if self.process.poll() not in (None, 0, 1):
            raise SippError(f"sipp {self.scenario} could not run: {self.output()}")
        return self

    def wait(self, timeout: float) -> SippStats:
        """Wait for a UAC to finish its calls; kill it and raise if it takes longer."""
        if self.process is None:
            raise SippError("sipp was not started")
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise SippError(f"sipp {self.scenario} still running after {timeout} s") from None
        return self.stats()

    def stop(self) -> SippStats:
        """End the process (SIGTERM, then SIGKILL) and return its last counters."""
        stop_all([self])
        return self.stats()

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stats(self) -> SippStats:
        """Cumulative counters from the last row of the statistics CSV (zeros before one)."""
        try:
            rows = list(csv.DictReader((self.work_dir / STATS_FILE).open(), delimiter=";"))
        except FileNotFoundError:
            return SippStats(0, 0, 0)
        if not rows:
            return SippStats(0, 0, 0)
        last = rows[-1]
        return SippStats(
            created=int(last["TotalCallCreated"]),
            successful=int(last["SuccessfulCall(C)"]),
            failed=int(last["FailedCall(C)"]),
        )

    def messages(self) -> str:
        path = self.work_dir / MESSAGES_FILE
        return path.read_text(errors="replace") if path.exists() else ""

    def received_statuses(self) -> list[int]:
        """SIP status codes of every response received, in order."""
        return [int(code) for code in _RECEIVED_STATUS.findall(self.messages())]

    def final_answers(self) -> dict[int, list[int]]:
        """Final statuses (200 and up) received, by the CSeq number they answer, each status
        once: a request retransmitted before its answer arrived (500 ms of silence from a
        busy peer) draws the same answer twice, which is one answer to one request."""
        answers: dict[int, list[int]] = {}
        for message in _TRACE_SEPARATOR.split(self.messages()):
            status, cseq = _RECEIVED_STATUS.search(message), _CSEQ.search(message)
            if status and cseq and int(status.group(1)) >= 200:
                seen = answers.setdefault(int(cseq.group(1)), [])
                if int(status.group(1)) not in seen:
                    seen.append(int(status.group(1)))
        return answers

    def received_requests(self) -> list[str]:
        """Methods of every request received (INVITE, ACK, BYE, CANCEL, ...), in order."""
        return _RECEIVED_REQUEST.findall(self.messages())

    def requests_by_call(self) -> dict[str, list[str]]:
        """Methods of the requests received, per Call-ID, in order (retransmissions too)."""
        calls: dict[str, list[str]] = {}
        for message in _TRACE_SEPARATOR.split(self.messages()):
            request, call_id = _RECEIVED_REQUEST.search(message), _CALL_ID.search(message)
            if request and call_id:
                calls.setdefault(call_id.group(1), []).append(request.group(1))
        return calls

    def call_setups(self) -> dict[str, tuple[datetime, datetime | None]]:
        """A UAC's calls by Call-ID: when its first INVITE left and when the 200 OK to it
        arrived (None: never), from the message trace."""
        setups: dict[str, tuple[datetime, datetime | None]] = {}
        for found in _STAMPED.finditer(self.messages()):
            body, call_id = found.group("body"), _CALL_ID.search(found.group("body"))
            if call_id is None:
                continue
            at = datetime.fromisoformat(" ".join(found.group("at").split()))
            key = call_id.group(1)
            if key not in setups and _SENT_INVITE.search(body):
                setups[key] = (at, None)
            elif key in setups and setups[key][1] is None and _RECEIVED_INVITE_OK.search(body):
                setups[key] = (setups[key][0], at)
        return setups

    def answered_calls(self) -> int:
        """Calls this UAS answered and that were not cancelled: an ACK and no CANCEL. (A
        CANCEL crossing our 200 OK ends the call unanswered for the other side too.)"""
        return sum("ACK" in methods and "CANCEL" not in methods
                   for methods in self.requests_by_call().values())

    def output(self) -> str:
        path = self.work_dir / "sipp.out"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


# sipp's audio and video RTP/RTCP sockets sit at -mp .. -mp + 3.
MEDIA_PORTS_PER_PROCESS = 4


def udp_ports_free(address: str, ports: list[int]) -> bool:
    """Whether every one of ``ports`` can be bound on ``address`` (UDP) right now."""
    probes: list[socket.socket] = []
    try:
        for port in ports:
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            probes.append(probe)
            probe.bind((address, port))
    except OSError:
        return False
    finally:
        for probe in probes:
            probe.close()
    return True


class SippPool:
    """Starts sipp peers wired to one Asterisk instance and stops them all at ``close``.

    Fixed roles get the addresses the instance's config points at: agent phones answer on
    AGENT_PHONE_IP:ports.agent_phone, the carrier's customers on CARRIER_IP:ports.trunk.
    Callers come from CARRIER_IP (identified as the trunk) unless told otherwise. Every
    process gets fresh SIP and media ports outside Asterisk's RTP ranges.
    """

    FIRST_SIP_PORT = 20000
    FIRST_MEDIA_PORT = 40000
    PORT_PAIRS = 200  # per slot: SIP ports 500 apart, media 10 per process in 2000 ports
    _port_pairs = itertools.cycle(range(PORT_PAIRS))  # shared by the session's pools

    def __init__(self, work_dir: Path, asterisk_sip: int, agent_phone_port: int | None,
                 trunk_port: int) -> None:
        self.work_dir = work_dir
        self.asterisk_sip = asterisk_sip
        self.agent_phone_port = agent_phone_port
        self.trunk_port = trunk_port
        self.started: list[Sipp] = []

    def _next(self, local_ip: str, fixed_port: int | None) -> tuple[Path, int, int]:
        # Ports move on from pool to pool, so a stray packet meant for an earlier test's
        # process (a late BYE retransmission) does not reach this test's. The media ports lie
        # in the kernel's ephemeral range, and a process can outlive a turn of the cycle, so a
        # pair whose ports are taken right now is skipped.
        slot = test_slot()
        for _ in range(self.PORT_PAIRS):
            pair = next(self._port_pairs)
            sip_port = fixed_port or self.FIRST_SIP_PORT + 500 * slot + pair
            media_port = self.FIRST_MEDIA_PORT + 2000 * slot + 10 * pair
            wanted = [media_port + offset for offset in range(MEDIA_PORTS_PER_PROCESS)]
            if udp_ports_free(local_ip, wanted if fixed_port else [sip_port, *wanted]):
                return self.work_dir / f"sipp-{len(self.started):03d}", sip_port, media_port
        raise SippError(f"no free sipp ports on {local_ip} in slot {slot}")

    def start(self, scenario: str, *, local_ip: str, port: int | None = None,
              uac: bool = False, **options: object) -> Sipp:
        work_dir, sip_port, media_port = self._next(local_ip, port)
        target = f"127.0.0.1:{self.asterisk_sip}" if uac else None
        sipp = Sipp(scenario, work_dir, local_ip=local_ip, port=sip_port,
                    media_port=media_port, target=target, **options)  # type: ignore[arg-type]
        self.started.append(sipp)
        return sipp.start()

    def agent_phones(self, keys: str = "", **values: str) -> Sipp:
        """One UAS answering (and echoing media) for every agent endpoint; each answered call
        then presses ``keys`` (see ``key_steps``)."""
        if self.agent_phone_port is None:
            raise SippError("this instance has no static agent contact (Ports.agent_phone)")
        steps = {"KEYS": key_steps(keys, self._keys_dir())} if keys else {}
        return self.start("agent_phone", local_ip=AGENT_PHONE_IP, port=self.agent_phone_port,
                          values={**values, **steps}, extra_args=["-rtp_echo"])

    def carrier(self, **values: str) -> Sipp:
        """The customers behind the trunk: a UAS on the trunk's contact address."""
        return self.start("customer", local_ip=CARRIER_IP, port=self.trunk_port, values=values,
                          extra_args=["-rtp_echo"])

    def call(self, number: str, *, calls: int = 1, local_ip: str = CARRIER_IP,
             rate: float | None = None, **values: str) -> Sipp:
        """Customers calling ``number``: ``calls`` calls, then sipp exits."""
        return self.start("caller", local_ip=local_ip, uac=True, service=number, calls=calls,
                          rate=rate, values=values)

    def dtmf_call(self, number: str, keys: str, **values: str) -> Sipp:
        """One customer calling ``number`` who presses ``keys`` (see ``key_steps``)."""
        return self.start("dtmf_caller", local_ip=CARRIER_IP, uac=True, service=number,
                          calls=1, values={"KEYS": key_steps(keys, self._keys_dir()), **values})

    def callback_carrier(self, keys: str, **values: str) -> Sipp:
        """Customers called back: a UAS on the trunk's contact that answers every call and
        presses ``keys`` (``""``: a voicemail that presses nothing)."""
        return self.start("callback_customer", local_ip=CARRIER_IP, port=self.trunk_port,
                          values={"KEYS": key_steps(keys, self._keys_dir()), **values},
                          extra_args=["-rtp_echo"])

    def _keys_dir(self) -> Path:
        return self.work_dir / f"keys-{len(self.started):03d}"

    def agent_call(self, agent: str, password: str, number: str, **values: str) -> Sipp:
        """Agent ``agent``'s phone dialing ``number``, answering the digest challenge."""
        return self.start(
            "agent_call", local_ip=AGENT_CALLER_IP, uac=True, service=number, calls=1,
            values={"AUTH_USER": agent, "AUTH_PASSWORD": password, **values},
        )

    def close(self) -> None:
        stop_all(self.started)


def stop_all(sipps: Iterable[Sipp], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM every running sipp at once, SIGKILL what is left after ``grace_s``: a sipp with
    calls up can take seconds to quit, and one after another twenty of them took over a minute
    (a demo's Ctrl-C outlived its test's patience and left its processes behind)."""
    running = [s.process for s in sipps if s.process is not None and s.process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
