"""Spoken greetings for measuring answering-machine detection: people and machines picking up.

AMD() decides from the first seconds of audio after the answer: how long the line stays silent,
how many words come and how long the talking lasts before a pause. The greetings here vary
exactly those: a person says a short phrase ("Hello?", "Yes, speaking") after picking up and
waits; a machine plays 5-20 s of "You have reached ...", some ending in the record tone. Voices,
speeds, pitches, levels and background noise vary too, drawn from one seed, so a run is
repeatable and nothing audio-like is committed: ``synthesize`` renders every greeting with
espeak-ng and sox (``make setup`` installs both) into a folder named after the specs' digest,
as 8 kHz mono A-law captures sipp plays with ``play_pcap_audio``.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from testbed.tone_pcap import RATE, write_pcma_pcap

# Bump when the rendering below changes, so a cached folder is never taken for the new audio.
RENDER_VERSION = 1


class Kind(StrEnum):
    HUMAN = "human"
    MACHINE = "machine"


@dataclass(frozen=True)
class Greeting:
    """What a callee sends after picking up, before anyone else speaks."""

    name: str
    kind: Kind
    utterances: tuple[str, ...]
    pauses_s: tuple[float, ...]  # silence before each utterance (the first: picking up)
    tail_s: float  # silence after the last one (a person waiting for an answer)
    voice: str  # espeak-ng voice with variant, e.g. "en-us+f3"
    words_per_minute: int
    pitch: int  # espeak-ng 0-99
    speech_peak_dbfs: float
    noise_peak_dbfs: float  # pink background noise under the whole greeting
    beep_hz: int  # the machine's record tone after the greeting (0: none)

    @property
    def words(self) -> int:
        return sum(len(text.split()) for text in self.utterances)


_LANGUAGES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029")
_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5", "klatt2")
_HUMAN_PHRASES = (
    "Hello?", "Yes, speaking.", "Hi, who is this?", "Yeah?", "Hello, who's calling?",
    "Speaking.", "Hello, this is Mary.", "Good afternoon.", "Hi.", "Yes?", "Hello, Tom here.",
    "Hey, what's up?",
)
_NAMES = ("John Smith", "Maria", "the Johnson family", "Doctor Patel", "Kevin and Sue",
          "Alex Turner")
_MACHINE_OPENERS = (
    "Hi, you've reached {name}.", "Hello, you have reached the voicemail of {name}.",
    "Thank you for calling {name}.", "The person you are calling, {name}, is not available.",
    "Hey, it's {name}.", "You have reached {name}.",
)
_MACHINE_MIDDLES = (
    "I can't come to the phone right now.", "I'm away from my desk at the moment.",
    "We are either on the other line or out of the office.",
    "Our office hours are Monday to Friday, nine to five.",
    "If this is urgent, please call my mobile instead.",
    "I'm probably out walking the dog, or I just can't find my phone.",
    "Sorry I missed your call.",
)
_MACHINE_CLOSINGS = (
    "Please leave your name, number and a short message after the tone, "
    "and I'll get back to you as soon as I can.",
    "Please leave a message after the beep.", "Leave a message and I will call you back.",
    "Thanks, and have a great day.",
)


def greeting_specs(per_kind: int, seed: int) -> list[Greeting]:
    """``per_kind`` people and as many machines, drawn from ``seed`` (same seed, same list)."""
    rng = random.Random(seed)
    return [_human(rng, i) for i in range(per_kind)] + [_machine(rng, i) for i in range(per_kind)]


def _voice(rng: random.Random) -> str:
    return f"{rng.choice(_LANGUAGES)}+{rng.choice(_VARIANTS)}"


def _human(rng: random.Random, index: int) -> Greeting:
    # a third say "hello?" again when nobody answers the first one
    utterances = [rng.choice(_HUMAN_PHRASES)]
    pauses = [rng.uniform(0.2, 1.5)]
    if rng.random() < 0.33:
        utterances.append("Hello?" if rng.random() < 0.7 else "Hello? Is anyone there?")
        pauses.append(rng.uniform(1.2, 2.5))
    return Greeting(
        name=f"human-{index:03d}", kind=Kind.HUMAN, utterances=tuple(utterances),
        pauses_s=tuple(round(p, 2) for p in pauses), tail_s=round(rng.uniform(3.0, 5.0), 2),
        voice=_voice(rng), words_per_minute=rng.randint(140, 210), pitch=rng.randint(20, 80),
        speech_peak_dbfs=round(rng.uniform(-16.0, -3.0), 1),
        # from a quiet room to a street
        noise_peak_dbfs=round(rng.uniform(-62.0, -30.0), 1), beep_hz=0,
    )


def _machine(rng: random.Random, index: int) -> Greeting:
    words_per_minute = rng.randint(145, 190)
    # espeak-ng speaks slower than its words-per-minute: this gives about 5-20 s of speech
    target_words = rng.uniform(4.0, 16.0) * words_per_minute / 60
    name = rng.choice(_NAMES)
    sentences = [rng.choice(_MACHINE_OPENERS).format(name=name)]
    middles = rng.sample(_MACHINE_MIDDLES, len(_MACHINE_MIDDLES))
    closing = rng.choice(_MACHINE_CLOSINGS)
    while middles and sum(len(s.split()) for s in (*sentences, closing)) < target_words:
        sentences.append(middles.pop())
    sentences.append(closing)
    return Greeting(
        name=f"machine-{index:03d}", kind=Kind.MACHINE, utterances=(" ".join(sentences),),
        pauses_s=(round(rng.uniform(0.1, 1.0), 2),), tail_s=round(rng.uniform(1.0, 3.0), 2),
        voice=_voice(rng), words_per_minute=words_per_minute, pitch=rng.randint(20, 80),
        speech_peak_dbfs=round(rng.uniform(-12.0, -3.0), 1),
        noise_peak_dbfs=round(rng.uniform(-70.0, -45.0), 1),
        beep_hz=rng.choice((0, 0, 850, 1000, 1400)),
    )


def specs_digest(greetings: Sequence[Greeting]) -> str:
    data = json.dumps([RENDER_VERSION, *(asdict(g) for g in greetings)], sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RenderedGreeting:
    greeting: Greeting
    pcap: Path  # RTP capture for sipp's play_pcap_audio
    wav: Path  # the same audio, 16-bit 8 kHz mono, to listen to
    seconds: float


class SynthesisError(RuntimeError):
    """espeak-ng or sox failed; the message names the greeting and the command."""


def synthesize(greetings: Sequence[Greeting], cache_dir: Path, workers: int = 2
               ) -> list[RenderedGreeting]:
    """Render every greeting into ``cache_dir/<digest>/`` (kept: the same specs reuse it)."""
    folder = cache_dir / specs_digest(greetings)
    folder.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda g: _render(g, folder), greetings))


def _run(greeting: Greeting, *command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise SynthesisError(
            f"greeting {greeting.name}: {' '.join(command)} exited {result.returncode}:"
            f" {result.stderr.strip()}"
        )


# -R: sox seeds its noise generator with a fixed number, so the noise is the same every run
_SOX = ("sox", "-R", "-D")
_PCM = ("-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer")


def _render(greeting: Greeting, folder: Path) -> RenderedGreeting:
    wav, pcap = folder / f"{greeting.name}.wav", folder / f"{greeting.name}.pcap"
    if not pcap.exists():
        work = folder / f".{greeting.name}"
        work.mkdir(exist_ok=True)
        parts: list[str] = []
        for index, (text, pause) in enumerate(zip(greeting.utterances, greeting.pauses_s,
                                                  strict=True)):
            spoken, part = work / f"spoken{index}.wav", work / f"part{index}.wav"
            _run(greeting, "espeak-ng", "-v", greeting.voice, "-s", str(greeting.words_per_minute),
                 "-p", str(greeting.pitch), "-w", str(spoken), text)
            _run(greeting, *_SOX, str(spoken), *_PCM, str(part),
                 "gain", "-n", str(greeting.speech_peak_dbfs), "pad", str(pause))
            parts.append(str(part))
        if greeting.beep_hz:
            beep = work / "beep.wav"
            _run(greeting, *_SOX, "-n", *_PCM, str(beep), "synth", "0.6", "sine",
                 str(greeting.beep_hz), "gain", "-n", "-8", "pad", "0.3")
            parts.append(str(beep))
        speech, noise = work / "speech.wav", work / "noise.wav"
        _run(greeting, *_SOX, *parts, *_PCM, str(speech), "pad", "0", str(greeting.tail_s))
        samples = _samples(greeting, speech)
        _run(greeting, *_SOX, "-n", *_PCM, str(noise), "synth", f"{samples}s", "pinknoise",
             "gain", "-n", str(greeting.noise_peak_dbfs))
        _run(greeting, *_SOX, "-m", "-v", "1", str(speech), "-v", "1", str(noise), *_PCM,
             str(wav))
        alaw = work / "greeting.al"
        _run(greeting, *_SOX, str(wav), "-t", "al", "-r", str(RATE), "-c", "1", str(alaw))
        # written last: its existence marks the greeting as complete
        write_pcma_pcap(pcap, alaw.read_bytes())
        shutil.rmtree(work)
    return RenderedGreeting(greeting, pcap, wav, _samples(greeting, wav) / RATE)


def _samples(greeting: Greeting, wav: Path) -> int:
    result = subprocess.run(["soxi", "-s", str(wav)], capture_output=True, text=True,
                            check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise SynthesisError(f"greeting {greeting.name}: soxi {wav}: {result.stderr.strip()}")
    return int(result.stdout)


def dialed_number(index: int) -> str:
    """The number that makes the greeting customer play greeting ``index``."""
    return f"g{index:03d}"


def scenario_branches(pcaps: Sequence[Path]) -> str:
    """The ``greeting_customer`` scenario's @GREETINGS@: greeting ``i`` plays when the
    INVITE's user part is ``dialed_number(i)`` (sipp loads a capture when it reads the
    scenario, so each one needs its own action)."""
    tests, plays = [], []
    for index, pcap in enumerate(pcaps):
        tests.append(
            f'  <nop><action><test assign_to="hit" variable="greeting" compare="equal"'
            f' value="{index}"/></action></nop>\n  <nop test="hit" next="play{index}"/>'
        )
        plays.append(
            f'  <label id="play{index}"/>\n  <nop next="talk"><action>'
            f'<exec play_pcap_audio="{pcap}"/></action></nop>'
        )
    return "\n".join([*tests, '  <nop next="talk"/>', *plays])
