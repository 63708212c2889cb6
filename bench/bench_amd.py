"""Answering-machine detection on speech: Asterisk's AMD() hearing people and machines.

``testbed/greetings.py`` synthesizes PER_KIND people ("Hello?", "Yes, speaking", pauses,
background noise) and as many answering machines (5-20 s "You have reached ...", some ending in
the record tone), from one seed, with espeak-ng and sox. One sipp UAS on the trunk's address
answers each call at once and plays the greeting the dialed number names; a test Asterisk
(this slot's ports) originates every greeting into the dialer's own dialplan (callctl-dialer,
the line campaigns use) with CALLCTL_AMD=1 and each candidate's AMD() arguments, CONCURRENCY
calls at a time. The dialplan reports each verdict as a ``CallctlAmdVerdict`` UserEvent; the
detection time is from AMD() starting (Newexten) to that event, both on Asterisk's clock (the
events' Timestamp).

Candidates: Asterisk's documented defaults (before tuning), a small grid around them, and
``asterisk-conf/amd.conf`` as committed (plain ``AMD()``: what campaigns get without tuning
fields). The rule: the highest P(MACHINE | machine) with P(MACHINE | human) <= 2 % (a human
classed as a machine is hung up on: an abandon under the FCC rule), then the fewer humans
classed as machines, the fewer NOTSURE humans, the faster machine verdict.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.common import Table, slot_instance
from controller.asterisk.ami import AmiClient
from controller.config import AmiConfig
from controller.dialer.settings import AmdSettings
from testbed.ami_listener import ami_listener
from testbed.asterisk import (
    CARRIER_IP,
    REPO_DIR,
    AsteriskInstance,
)
from testbed.greetings import (
    Kind,
    RenderedGreeting,
    dialed_number,
    greeting_specs,
    scenario_branches,
    synthesize,
)
from testbed.sipp import SippPool

PER_KIND = 50  # 1 human in 50 is the 2 % a tuning may cost
SEED = 17
CONCURRENCY = 10
CALL_TIMEOUT_S = 40.0
MAX_FALSE_MACHINE = 0.02
STATUSES = ("HUMAN", "MACHINE", "NOTSURE", "HANGUP")

# Asterisk's documented defaults (amd.conf.sample), as explicit arguments.
DEFAULTS = AmdSettings(
    initial_silence_ms=2500, greeting_ms=1500, after_greeting_silence_ms=800,
    total_analysis_time_ms=5000, min_word_length_ms=100, between_words_silence_ms=50,
    maximum_number_of_words=2, silence_threshold=256, maximum_word_length_ms=5000,
)
CANDIDATES: dict[str, AmdSettings] = {
    "defaults": DEFAULTS,
    "words3": DEFAULTS.model_copy(update={"maximum_number_of_words": 3}),
    "words4": DEFAULTS.model_copy(update={"maximum_number_of_words": 4}),
    "words5": DEFAULTS.model_copy(update={"maximum_number_of_words": 5}),
    "words4-greet2000": DEFAULTS.model_copy(
        update={"maximum_number_of_words": 4, "greeting_ms": 2000}),
    "words4-after600": DEFAULTS.model_copy(
        update={"maximum_number_of_words": 4, "after_greeting_silence_ms": 600}),
    "words4-thr512": DEFAULTS.model_copy(
        update={"maximum_number_of_words": 4, "silence_threshold": 512}),
    "amd.conf": AmdSettings(),
}


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    status: str  # AMDSTATUS, or "" when no verdict came
    cause: str
    seconds: float | None  # AMD() start to verdict


@dataclass
class Matrix:
    """Verdicts of one candidate, per greeting kind."""

    verdicts: list[Verdict] = field(default_factory=list)

    def count(self, kind: Kind, status: str | None = None) -> int:
        return sum(v.kind is kind and (status is None or v.status == status)
                   for v in self.verdicts)

    def share(self, kind: Kind, status: str) -> float:
        total = self.count(kind)
        return self.count(kind, status) / total if total else 0.0

    def mean_seconds(self, kind: Kind | None = None) -> float:
        times = [v.seconds for v in self.verdicts
                 if v.seconds is not None and (kind is None or v.kind is kind)]
        return statistics.fmean(times) if times else 0.0

    def causes(self, kind: Kind, status: str) -> Counter[str]:
        """AMDCAUSE's reason (its first word) for the verdicts ``status`` of ``kind``."""
        return Counter(v.cause.split("-")[0] for v in self.verdicts
                       if v.kind is kind and v.status == status)

    def rows(self) -> list[list[object]]:
        rows: list[list[object]] = []
        for kind in Kind:
            n = self.count(kind)
            rows.append([kind.value, n, *(self.count(kind, s) for s in STATUSES),
                         n - sum(self.count(kind, s) for s in STATUSES),
                         round(self.share(kind, "MACHINE"), 3),
                         round(self.mean_seconds(kind), 2)])
        return rows


def choose(matrices: Mapping[str, Matrix]) -> str | None:
    """The candidate with the most machines detected among those that class at most 2 % of
    humans as machines; then fewer humans classed as machines (each is an abandon), fewer
    NOTSURE humans, faster machine verdicts. None if no candidate holds the 2 %."""
    allowed = [name for name, m in matrices.items()
               if m.share(Kind.HUMAN, "MACHINE") <= MAX_FALSE_MACHINE]
    if not allowed:
        return None
    return max(allowed, key=lambda name: (
        matrices[name].share(Kind.MACHINE, "MACHINE"),
        -matrices[name].share(Kind.HUMAN, "MACHINE"),
        -matrices[name].share(Kind.HUMAN, "NOTSURE"),
        -matrices[name].mean_seconds(Kind.MACHINE),
    ))


@dataclass
class _Call:
    kind: Kind
    amd_started: float | None = None
    verdict: tuple[str, str, float] | None = None  # status, cause, when
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class _Calls:
    """The bench's calls by attempt id, fed from AMI events."""

    def __init__(self) -> None:
        self.calls: dict[str, _Call] = {}

    def on_event(self, event: Mapping[str, Any]) -> None:
        # Asterisk's own clock (timestampevents = yes), not when this process read the event
        name, now = event.get("Event"), float(event.get("Timestamp") or "nan")
        if name == "UserEvent" and event.get("UserEvent") == "CallctlAmdVerdict":
            call = self.calls.get(str(event.get("Attempt", "")))
            if call is not None:
                call.verdict = (str(event.get("Status", "")), str(event.get("Cause", "")), now)
            return
        call = self.calls.get(str(event.get("Uniqueid", "")))
        if call is None:
            return
        if name == "Newexten" and event.get("Application") == "AMD":
            call.amd_started = now
        elif name == "Hangup":
            call.ended.set()


async def _measure_candidate(ami: AmiClient, calls: _Calls, tag: str, settings: AmdSettings,
                             greetings: Sequence[RenderedGreeting]) -> Matrix:
    order = list(range(len(greetings)))
    random.Random(SEED).shuffle(order)  # people and machines mixed, the same way every time
    gate = asyncio.Semaphore(CONCURRENCY)
    matrix = Matrix()

    async def one(index: int) -> None:
        attempt = f"amd-{tag}-{index:03d}"
        call = calls.calls[attempt] = _Call(greetings[index].greeting.kind)
        async with gate:
            await ami.originate(
                f"PJSIP/{dialed_number(index)}@trunk", attempt, context="callctl-dialer",
                exten="s", priority=1, timeout_s=10, caller_id="AMD bench <5550100>",
                variables={
                    "CALLCTL_CAMPAIGN": "amd-bench", "CALLCTL_ATTEMPT": attempt,
                    "CALLCTL_AMD": "1",
                    # as the runner sends it: Originate splits variables at commas
                    "CALLCTL_AMD_ARGS": settings.dialplan_args().replace(",", "\\,"),
                    "CALLCTL_AMD_MESSAGE": "", "CALLCTL_SAFE_HARBOR": "",
                    "CALLCTL_MAX_CALL_S": str(int(CALL_TIMEOUT_S)),
                },
            )
            await asyncio.wait_for(call.ended.wait(), CALL_TIMEOUT_S)
        status, cause, at = call.verdict or ("", "", None)
        seconds = at - call.amd_started if at is not None and call.amd_started else None
        matrix.verdicts.append(Verdict(call.kind, status, cause, seconds))

    await asyncio.gather(*(one(i) for i in order))
    return matrix


def _asterisk_cpu_s(instance: AsteriskInstance) -> float:
    pid = instance.pid()
    if pid is None:
        return 0.0
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks (100/s)


async def _measure(instance: AsteriskInstance, greetings: Sequence[RenderedGreeting]
                   ) -> tuple[dict[str, Matrix], dict[str, tuple[float, float]]]:
    calls = _Calls()
    secrets = instance.secrets
    ami_config = AmiConfig(port=instance.ports.ami, username=secrets.ami_user,
                           secret=SecretStr(secrets.ami_secret))
    matrices: dict[str, Matrix] = {}
    costs: dict[str, tuple[float, float]] = {}  # wall s, Asterisk CPU share of one core
    async with ami_listener(ami_config, calls.on_event) as ami:
        for tag, settings in CANDIDATES.items():
            started, cpu = time.monotonic(), _asterisk_cpu_s(instance)
            matrices[tag] = await _measure_candidate(ami, calls, tag, settings, greetings)
            wall = time.monotonic() - started
            costs[tag] = (wall, (_asterisk_cpu_s(instance) - cpu) / wall)
    return matrices, costs


def run() -> list[Table]:
    greetings = synthesize(greeting_specs(PER_KIND, SEED), REPO_DIR / "var" / "greetings")
    with slot_instance("amd") as (state, instance):
        pool = SippPool(state / "sipp", instance.ports.sip, instance.ports.agent_phone,
                        instance.ports.trunk)
        instance.start()
        try:
            pool.start("greeting_customer", local_ip=CARRIER_IP, port=instance.ports.trunk,
                       values={"GREETINGS": scenario_branches([g.pcap for g in greetings]),
                               "TALK_MS": str(int(CALL_TIMEOUT_S * 1000))})
            matrices, costs = asyncio.run(_measure(instance, greetings))
        finally:
            pool.close()
            instance.stop()
    return _tables(greetings, matrices, costs)


def _tables(greetings: Sequence[RenderedGreeting], matrices: Mapping[str, Matrix],
            costs: Mapping[str, tuple[float, float]]) -> list[Table]:
    chosen = choose(matrices)
    lengths = {kind: [g.seconds for g in greetings if g.greeting.kind is kind] for kind in Kind}
    columns = ["greeting", "n", *STATUSES, "no verdict", "P(MACHINE)", "mean s"]
    tables = [
        Table(
            title=f"AMD confusion matrix: {name}"
            + (" (Asterisk's defaults: before tuning)" if name == "defaults" else "")
            + (" (amd.conf as committed: after tuning)" if name == "amd.conf" else ""),
            columns=columns,
            rows=matrix.rows(),
            notes=[
                f"AMD({CANDIDATES[name].dialplan_args()})",
                "humans classed MACHINE by cause: "
                + (", ".join(f"{c} {n}" for c, n in
                             matrix.causes(Kind.HUMAN, "MACHINE").most_common()) or "none"),
                "machines classed HUMAN by cause: "
                + (", ".join(f"{c} {n}" for c, n in
                             matrix.causes(Kind.MACHINE, "HUMAN").most_common()) or "none"),
                f"{costs[name][0]:.1f} s wall, Asterisk CPU {costs[name][1]:.0%} of one core",
            ],
        )
        for name, matrix in matrices.items()
    ]
    tables.append(Table(
        title="AMD candidates (rule: max P(MACHINE|machine) with P(MACHINE|human) <= 2 %)",
        columns=["candidate", "P(M|machine)", "P(M|human)", "P(NOTSURE|human)",
                 "mean s machine", "mean s human", "chosen"],
        rows=[[name, round(m.share(Kind.MACHINE, "MACHINE"), 3),
               round(m.share(Kind.HUMAN, "MACHINE"), 3), round(m.share(Kind.HUMAN, "NOTSURE"), 3),
               round(m.mean_seconds(Kind.MACHINE), 2), round(m.mean_seconds(Kind.HUMAN), 2),
               "yes" if name == chosen else ""]
              for name, m in matrices.items()],
        notes=[
            f"{PER_KIND} humans ({min(lengths[Kind.HUMAN]):.1f}-{max(lengths[Kind.HUMAN]):.1f} s"
            f" of audio) and {PER_KIND} machines ({min(lengths[Kind.MACHINE]):.1f}-"
            f"{max(lengths[Kind.MACHINE]):.1f} s), seed {SEED}, {CONCURRENCY} calls at a time",
            "NOTSURE goes to an agent like HUMAN (dialer.conf); mean s: AMD() start to verdict",
            "none meets the rule" if chosen is None else f"chosen: {chosen}",
        ],
    ))
    return tables
