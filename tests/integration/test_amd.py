"""AMD() on the dialer's own dialplan line, hearing speech sipp plays: a person saying "Hello?"
and an answering machine, each verdict reported as UserEvent CallctlAmdVerdict; a campaign's
AMD() arguments (CALLCTL_AMD_ARGS) change the verdict."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from controller.asterisk.ami import AmiClient
from controller.config import Config
from controller.dialer.settings import AmdSettings
from testbed.ami_listener import ami_listener
from testbed.asterisk import CARRIER_IP, AsteriskInstance
from testbed.greetings import Greeting, Kind, dialed_number, scenario_branches, synthesize
from testbed.sipp import SippPool

from .harness import wait_for

pytestmark = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                                reason="espeak-ng and sox are host packages (make setup)")

HELLO = Greeting(
    name="hello", kind=Kind.HUMAN, utterances=("Hello?",), pauses_s=(0.5,), tail_s=4.0,
    voice="en-us+m3", words_per_minute=170, pitch=50, speech_peak_dbfs=-6.0,
    noise_peak_dbfs=-60.0, beep_hz=0,
)
MACHINE = Greeting(
    name="machine", kind=Kind.MACHINE,
    utterances=("Hi, you've reached John Smith. I can't come to the phone right now. Please "
                "leave a message after the tone.",),
    pauses_s=(0.3,), tail_s=1.0, voice="en-gb+f3", words_per_minute=170, pitch=50,
    speech_peak_dbfs=-6.0, noise_peak_dbfs=-60.0, beep_hz=1000,
)


async def _verdict(ami: AmiClient, verdicts: Mapping[str, tuple[str, str]], index: int,
                   attempt: str, settings: AmdSettings) -> tuple[str, str]:
    await ami.originate(
        f"PJSIP/{dialed_number(index)}@trunk", attempt, context="callctl-dialer", exten="s",
        priority=1, timeout_s=10,
        variables={"CALLCTL_CAMPAIGN": "amd", "CALLCTL_ATTEMPT": attempt, "CALLCTL_AMD": "1",
                   "CALLCTL_AMD_ARGS": settings.dialplan_args().replace(",", "\\,"),
                   "CALLCTL_MAX_CALL_S": "20"},
    )
    return await wait_for(lambda: verdicts.get(attempt), 15, f"AMD's verdict on {attempt}")


async def test_amd_tells_a_hello_from_a_machine_and_takes_the_campaigns_arguments(
    asterisk: AsteriskInstance, controller_config: Config, sipp: SippPool, tmp_path: Path
) -> None:
    greetings = synthesize([HELLO, MACHINE], tmp_path / "greetings")
    sipp.start("greeting_customer", local_ip=CARRIER_IP, port=asterisk.ports.trunk,
               values={"GREETINGS": scenario_branches([g.pcap for g in greetings]),
                       "TALK_MS": "20000"})
    verdicts: dict[str, tuple[str, str]] = {}
    # when the dialplan said the line answered, and when AMD's verdict came (loop time)
    picked_up_at: dict[str, float] = {}
    verdict_at: dict[str, float] = {}
    clock = asyncio.get_running_loop().time

    def on_event(event: Mapping[str, Any]) -> None:
        if event.get("Event") != "UserEvent":
            return
        attempt = str(event.get("Attempt"))
        if event.get("UserEvent") == "CallctlPickedUp":
            picked_up_at.setdefault(attempt, clock())
        if event.get("UserEvent") == "CallctlAmdVerdict":
            verdict_at[attempt] = clock()
            verdicts[attempt] = (str(event.get("Status")), str(event.get("Cause")))

    async with ami_listener(controller_config.ami, on_event) as ami:
        hello, machine = await asyncio.gather(
            _verdict(ami, verdicts, 0, "amd-hello", AmdSettings()),
            _verdict(ami, verdicts, 1, "amd-machine", AmdSettings()),
        )
        # "Hello?" is longer than a greeting may be when the campaign allows only 200 ms
        strict = await _verdict(ami, verdicts, 0, "amd-hello-strict",
                                AmdSettings(greeting_ms=200))
    assert hello[0] == "HUMAN", hello
    assert machine[0] == "MACHINE", machine
    assert strict[0] == "MACHINE" and strict[1].startswith("LONGGREETING-"), strict
    assert strict[1].endswith("-200"), strict
    # the answer reaches the dialer before the verdict, by the time AMD listened: pacing counts
    # the call as screened that much sooner
    for attempt in ("amd-hello", "amd-machine", "amd-hello-strict"):
        assert attempt in picked_up_at, f"no CallctlPickedUp for {attempt}"
        assert verdict_at[attempt] - picked_up_at[attempt] > 0.1, (attempt, verdict_at,
                                                                    picked_up_at)
