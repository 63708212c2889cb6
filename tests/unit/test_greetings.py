"""The AMD bench's greetings: drawn from a seed, rendered with espeak-ng and sox, as sipp plays
them (8 kHz PCMA RTP), and the scenario branches that pick one by the dialed number."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from testbed.greetings import (
    Kind,
    dialed_number,
    greeting_specs,
    scenario_branches,
    specs_digest,
    synthesize,
)
from testbed.render import render
from testbed.sipp import scenario_text
from testbed.tone_pcap import FRAME_SAMPLES, PCMA_PAYLOAD_TYPE, RATE


def test_the_same_seed_draws_the_same_greetings_and_another_seed_others() -> None:
    assert greeting_specs(40, 1) == greeting_specs(40, 1)
    assert specs_digest(greeting_specs(40, 1)) != specs_digest(greeting_specs(40, 2))


def test_people_say_a_few_words_and_machines_talk_on() -> None:
    greetings = greeting_specs(40, 3)
    people = [g for g in greetings if g.kind is Kind.HUMAN]
    machines = [g for g in greetings if g.kind is Kind.MACHINE]
    assert len(people) == len(machines) == 40
    assert all(g.words <= 8 and g.beep_hz == 0 for g in people)
    # 4-16 s at the nominal pace, plus a last sentence (espeak-ng speaks slower than that)
    assert all(4 <= g.words * 60 / g.words_per_minute <= 22 for g in machines)
    assert any(g.beep_hz for g in machines) and not all(g.beep_hz for g in machines)
    assert len({g.voice for g in greetings}) > 10
    assert len({g.name for g in greetings}) == 80


def _rtp_packets(pcap: Path) -> list[bytes]:
    data = pcap.read_bytes()
    offset, packets = 24, []
    while offset < len(data):
        length = struct.unpack_from("<I", data, offset + 8)[0]
        packets.append(data[offset + 16 + 14 + 20 + 8:offset + 16 + length])
        offset += 16 + length
    return packets


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                    reason="espeak-ng and sox are host packages (make setup)")
def test_a_rendered_greeting_is_its_audio_as_pcma_rtp_at_20_ms(tmp_path: Path) -> None:
    human, machine = greeting_specs(1, 5)
    rendered = synthesize([human, machine], tmp_path)
    assert [r.greeting for r in rendered] == [human, machine]
    for item in rendered:
        packets = _rtp_packets(item.pcap)
        # the whole wav, less a last partial frame
        assert len(packets) == int(item.seconds * RATE) // FRAME_SAMPLES
        assert all(len(p) == 12 + FRAME_SAMPLES and p[1] & 0x7F == PCMA_PAYLOAD_TYPE
                   for p in packets)
        assert item.seconds >= sum(item.greeting.pauses_s) + item.greeting.tail_s
    assert rendered[1].seconds > rendered[0].seconds
    # a second call renders nothing again: same folder, same files
    stamp = rendered[0].pcap.stat().st_mtime_ns
    assert synthesize([human, machine], tmp_path)[0].pcap.stat().st_mtime_ns == stamp


def test_the_scenario_plays_the_greeting_the_dialed_number_names() -> None:
    branches = scenario_branches([Path("/a/g0.pcap"), Path("/a/g1.pcap")])
    text = render(scenario_text("greeting_customer"), {"GREETINGS": branches, "TALK_MS": "1"})
    assert dialed_number(1) == "g001"
    assert 'value="1"/></action></nop>\n  <nop test="hit" next="play1"/>' in text
    assert '<label id="play1"/>\n  <nop next="talk"><action><exec play_pcap_audio="/a/g1.pcap"/>' \
        in text
    assert text.count("play_pcap_audio") == 2
