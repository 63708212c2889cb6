"""Demo traffic on real SIP: inbound callers, agents' phones and an outbound campaign's customers.

``make demo``, tests and benchmarks drive one Asterisk instance with the same generator:

- **callers** arrive as a Poisson process (exponential gaps at ``inbound_per_minute``), each a
  short-lived sipp UAC calling the DID with its own patience (exponential, at least
  ``patience_min_s``): it hangs up after that long unless the call ended first, so a caller
  kept waiting too long abandons;
- **agents' phones**: one sipp UAS answering for every agent (static AOR contact), ringing
  ``agent_ring_s`` and talking a uniform random ``agent_talk_min_s``-``agent_talk_max_s``; the
  campaign runner's nailed-up line (From user = the campaign name) stays up until hung up;
- **customers** of the outbound campaign: one sipp UAS behind the carrier trunk with a mix of
  people (short hello, then talk), answering machines (long greeting for AMD), busy and no
  answer.

Arrival times come from a seeded ``random.Random``: the same seed gives the same hour.
Every process is started in its own session and ended by ``stop``; nothing is left behind.

    python -m testbed.traffic --help
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from testbed.asterisk import AGENT_PHONE_IP, CARRIER_IP, DEMO_PORTS, Ports, test_ports
from testbed.signals import interrupt_on_ctrl_c_and_sigterm
from testbed.sipp import Sipp, SippError, stop_all, udp_ports_free
from testbed.tone_pcap import write_tone_pcap

DEMO_AGENT_PHONE_PORT = 5080
# sipp's own SIP and media ports, clear of Asterisk's RTP ranges and of SippPool's slot ranges
DEMO_SIP_BASE, DEMO_MEDIA_BASE = 24000, 56000
CALLER_PORTS = 400  # caller processes cycle through this many port pairs
MEDIA_STEP = 4  # RTP and RTCP of audio (and sipp's video pair) per caller
HUMAN_HELLO_S = 0.6  # a short "hello?": AMD hears speech, then silence -> HUMAN / NOTSURE
MACHINE_GREETING_S = 6.0  # longer than AMD's maximum greeting (1.5 s) -> MACHINE


class TrafficError(ValueError):
    """A traffic profile that cannot be run; the message names the option."""


@dataclass(frozen=True)
class TrafficProfile:
    """How much traffic, how patient callers are, how agents and customers behave."""

    number: str = "5000"  # the DID callers dial
    inbound_per_minute: float = 4.0
    patience_mean_s: float = 90.0
    patience_min_s: float = 15.0
    agent_ring_s: int = 2
    agent_talk_min_s: int = 20
    agent_talk_max_s: int = 70
    campaign: str = "demo-outbound"  # whose nailed-up agent lines stay up
    human: float = 0.35  # shares of the campaign's customers; the rest never answer
    machine: float = 0.15
    busy: float = 0.20
    customer_ring_min_s: int = 2
    customer_ring_max_s: int = 8
    customer_talk_min_s: int = 10
    customer_talk_max_s: int = 40
    seed: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.inbound_per_minute < 0:
            problems.append("inbound_per_minute must be >= 0")
        if self.patience_mean_s <= 0 or self.patience_min_s < 0:
            problems.append("patience_mean_s must be > 0 and patience_min_s >= 0")
        for low, high in (("agent_talk_min_s", "agent_talk_max_s"),
                          ("customer_ring_min_s", "customer_ring_max_s"),
                          ("customer_talk_min_s", "customer_talk_max_s")):
            if not 0 < getattr(self, low) <= getattr(self, high):
                problems.append(f"need 0 < {low} <= {high}")
        shares = (self.human, self.machine, self.busy)
        if min(shares) < 0 or sum(shares) > 1:
            problems.append("human, machine and busy must be >= 0 and add up to at most 1")
        if problems:
            raise TrafficError("; ".join(problems))

    def agent_values(self) -> dict[str, str]:
        return {"RING_S": str(self.agent_ring_s), "TALK_MIN_S": str(self.agent_talk_min_s),
                "TALK_MAX_S": str(self.agent_talk_max_s), "CAMPAIGN": self.campaign}

    def customer_values(self, human_pcap: Path, machine_pcap: Path) -> dict[str, str]:
        return {
            "HUMAN_UPTO": f"{self.human:.4f}",
            "MACHINE_UPTO": f"{self.human + self.machine:.4f}",
            "BUSY_UPTO": f"{self.human + self.machine + self.busy:.4f}",
            "RING_MIN_S": str(self.customer_ring_min_s),
            "RING_MAX_S": str(self.customer_ring_max_s),
            "TALK_MIN_S": str(self.customer_talk_min_s),
            "TALK_MAX_S": str(self.customer_talk_max_s),
            "HUMAN_PCAP": str(human_pcap), "MACHINE_PCAP": str(machine_pcap),
        }


def arrival_times(per_minute: float, duration_s: float, rng: random.Random) -> list[float]:
    """Offsets (s) of a Poisson process of ``per_minute`` arrivals within ``[0, duration_s)``."""
    if per_minute <= 0:
        return []
    times: list[float] = []
    now = 0.0
    while True:
        now += rng.expovariate(per_minute / 60.0)
        if now >= duration_s:
            return times
        times.append(now)


def patience_s(profile: TrafficProfile, rng: random.Random) -> float:
    """How long one caller holds on: exponential around the mean, never below the minimum."""
    return max(profile.patience_min_s, rng.expovariate(1.0 / profile.patience_mean_s))


@dataclass(frozen=True)
class SippPorts:
    """Where the generator's own sipp processes bind (SIP and media port bases)."""

    sip_base: int
    media_base: int

    @classmethod
    def for_slot(cls, slot: int | None) -> SippPorts:
        """The demo's range (no slot), or the same range as ``SippPool`` for a test slot."""
        if slot is None:
            return cls(DEMO_SIP_BASE, DEMO_MEDIA_BASE)
        return cls(20000 + 500 * slot, 40000 + 2000 * slot)


def instance_ports(slot: int | None) -> Ports:
    """The Asterisk ports the traffic targets: the demo's, or a test slot's."""
    if slot is None:
        return replace(DEMO_PORTS, agent_phone=DEMO_AGENT_PHONE_PORT)
    return test_ports(slot)


@dataclass
class TrafficCounts:
    callers_started: int = 0
    callers_completed: int = 0  # sipp: the call was set up and ended normally
    callers_failed: int = 0  # refused or broken
    caller_errors: list[str] = field(default_factory=list)


class TrafficGenerator:
    """The sipp processes of one run. ``start`` the phones, ``tick`` in a loop, ``stop``."""

    def __init__(self, ports: Ports, work_dir: Path, profile: TrafficProfile,
                 sipp_ports: SippPorts) -> None:
        if ports.agent_phone is None:
            raise TrafficError("the instance has no static agent contact (Ports.agent_phone)")
        self.ports = ports
        self.work_dir = work_dir
        self.profile = profile
        self.sipp_ports = sipp_ports
        self.rng = random.Random(profile.seed)
        self.counts = TrafficCounts()
        self.agents: Sipp | None = None
        self.customers: Sipp | None = None
        self._callers: dict[int, Sipp] = {}  # port index -> running caller
        self._next_index = 0
        self._pending: list[float] = []  # arrival instants (monotonic) not yet placed
        self._started = 0.0

    def start(self, duration_s: float) -> None:
        """Start the agents' phones and the customers, and plan the callers' arrivals."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        human = write_tone_pcap(self.work_dir / "hello.pcap", 440, HUMAN_HELLO_S)
        machine = write_tone_pcap(self.work_dir / "greeting.pcap", 660, MACHINE_GREETING_S)
        media = self.sipp_ports.media_base
        self.agents = Sipp(
            "demo_agent_phone", self.work_dir / "agent-phones", local_ip=AGENT_PHONE_IP,
            port=self.ports.agent_phone or 0, media_port=media, values=self.profile.agent_values(),
            extra_args=["-rtp_echo"],
        ).start()
        self.customers = Sipp(
            "demo_customer", self.work_dir / "customers", local_ip=CARRIER_IP,
            port=self.ports.trunk, media_port=media + 10,
            values=self.profile.customer_values(human, machine),
        ).start()
        self._started = time.monotonic()
        self._pending = [
            self._started + offset
            for offset in arrival_times(self.profile.inbound_per_minute, duration_s, self.rng)
        ]

    @property
    def callers_planned(self) -> int:
        return self.counts.callers_started + len(self._pending)

    def tick(self, now: float | None = None) -> None:
        """Place every caller due by ``now`` and collect those that finished."""
        now = time.monotonic() if now is None else now
        while self._pending and self._pending[0] <= now:
            self._pending.pop(0)
            self._place_caller()
        self._reap()

    def stop_arrivals(self) -> None:
        self._pending.clear()

    def active_callers(self) -> int:
        self._reap()
        return len(self._callers)

    def _place_caller(self) -> None:
        index = self._free_index()
        number = self.counts.callers_started
        caller = Sipp(
            "caller", self.work_dir / "callers" / f"{number:05d}", local_ip=CARRIER_IP,
            port=self._sip_port(index), media_port=self._media_port(index),
            target=f"127.0.0.1:{self.ports.sip}", service=self.profile.number, calls=1,
            values={"CALLER": f"0447{number:06d}",
                    "HOLD_MS": str(int(patience_s(self.profile, self.rng) * 1000))},
        )
        self.counts.callers_started += 1
        try:
            caller.start()
        except SippError as error:
            self.counts.callers_failed += 1
            self.counts.caller_errors.append(str(error))
            return
        self._callers[index] = caller

    def _sip_port(self, index: int) -> int:
        return self.sipp_ports.sip_base + 10 + index

    def _media_port(self, index: int) -> int:
        return self.sipp_ports.media_base + 100 + MEDIA_STEP * index

    def _free_index(self) -> int:
        """The next port pair no caller of ours holds and nothing else has bound: in a test
        slot the range is the suite's sipp pool's, and a pool's process (or anything given
        an ephemeral port) may hold one; a caller started on a taken port never calls."""
        for _ in range(CALLER_PORTS):
            index = self._next_index
            self._next_index = (self._next_index + 1) % CALLER_PORTS
            media = self._media_port(index)
            if index not in self._callers and udp_ports_free(
                    CARRIER_IP, [self._sip_port(index), *range(media, media + MEDIA_STEP)]):
                return index
        raise TrafficError(f"no free caller ports among {CALLER_PORTS}: lower the rate")

    def _reap(self) -> None:
        for index, caller in list(self._callers.items()):
            process = caller.process
            if process is None or process.poll() is None:
                continue
            if process.returncode == 0:
                self.counts.callers_completed += 1
            else:
                self.counts.callers_failed += 1
            del self._callers[index]

    def stop(self) -> None:
        """End every sipp of this run (callers first, then the phones); idempotent."""
        self._pending.clear()
        stop_all(self._callers.values())  # callers first: the phones still answer their BYEs
        self._reap()
        stop_all(uas for uas in (self.agents, self.customers) if uas is not None)


def run(generator: TrafficGenerator, duration_s: float, drain_s: float) -> TrafficCounts:
    """Run the generator for ``duration_s``, let callers finish for up to ``drain_s``, stop."""
    generator.start(duration_s)
    try:
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            generator.tick()
            time.sleep(0.1)
        generator.stop_arrivals()
        drain_end = time.monotonic() + drain_s
        while generator.active_callers() and time.monotonic() < drain_end:
            time.sleep(0.2)
    finally:
        generator.stop()
    return generator.counts


def add_profile_options(parser: argparse.ArgumentParser) -> None:
    """The profile's options, shared by ``python -m testbed.traffic`` and the demo."""
    default = TrafficProfile()
    group = parser.add_argument_group("traffic")
    group.add_argument("--number", default=default.number, help="DID the callers dial")
    group.add_argument("--rate", type=float, default=default.inbound_per_minute,
                       metavar="PER_MIN", help="inbound calls per minute, Poisson "
                       f"(default {default.inbound_per_minute})")
    group.add_argument("--patience", type=float, default=default.patience_mean_s,
                       metavar="S", help="callers' mean patience before abandoning "
                       f"(exponential, default {default.patience_mean_s})")
    group.add_argument("--agent-talk", nargs=2, type=int, metavar=("MIN", "MAX"),
                       default=(default.agent_talk_min_s, default.agent_talk_max_s),
                       help="agents' talk time range in s (uniform, default "
                       f"{default.agent_talk_min_s} {default.agent_talk_max_s})")
    group.add_argument("--customer-talk", nargs=2, type=int, metavar=("MIN", "MAX"),
                       default=(default.customer_talk_min_s, default.customer_talk_max_s),
                       help="answering customers' talk time range in s (default "
                       f"{default.customer_talk_min_s} {default.customer_talk_max_s})")
    group.add_argument("--mix", nargs=3, type=float, metavar=("HUMAN", "MACHINE", "BUSY"),
                       default=(default.human, default.machine, default.busy),
                       help="shares of the campaign's customers; the rest never answer "
                       f"(default {default.human} {default.machine} {default.busy})")
    group.add_argument("--campaign", default=default.campaign,
                       help="campaign whose nailed-up agent lines stay up")
    group.add_argument("--seed", type=int, help="random seed (same seed, same traffic)")


def profile_from(args: argparse.Namespace) -> TrafficProfile:
    human, machine, busy = args.mix
    return TrafficProfile(
        number=args.number, inbound_per_minute=args.rate, patience_mean_s=args.patience,
        agent_talk_min_s=args.agent_talk[0], agent_talk_max_s=args.agent_talk[1],
        customer_talk_min_s=args.customer_talk[0], customer_talk_max_s=args.customer_talk[1],
        human=human, machine=machine, busy=busy, campaign=args.campaign, seed=args.seed,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m testbed.traffic",
        description="Real SIP traffic (sipp) against a running testbed Asterisk: Poisson "
        "callers to a DID, agents' phones, an outbound campaign's customers.",
    )
    parser.add_argument("--slot", type=int, choices=range(8), metavar="N",
                        help="target test slot N's instance (default: the demo instance)")
    parser.add_argument("--duration", type=float, default=60.0, metavar="S",
                        help="seconds of arrivals (default 60)")
    parser.add_argument("--drain", type=float, default=30.0, metavar="S",
                        help="seconds to let calls in progress end (default 30)")
    parser.add_argument("--work-dir", type=Path, default=Path("var/traffic"),
                        help="sipp scenarios, statistics and traces (default var/traffic)")
    add_profile_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    interrupt_on_ctrl_c_and_sigterm()
    try:
        profile = profile_from(args)
        generator = TrafficGenerator(instance_ports(args.slot), args.work_dir, profile,
                                     SippPorts.for_slot(args.slot))
        counts = run(generator, args.duration, args.drain)
    except (TrafficError, SippError) as error:
        print(f"traffic: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(f"callers: {counts.callers_started} started, {counts.callers_completed} completed,"
          f" {counts.callers_failed} failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
