"""WAV helpers on the stdlib ``wave`` module: duration for metadata, stereo wrapping, silence.

Asterisk writes 16-bit signed linear audio; these helpers read and write exactly that, without a
subprocess, so the controller can compute a recording's duration and the tests (unit and
integration) can check that a paused interval is silent and which side spoke on which channel.
"""

from __future__ import annotations

import array
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

SAMPLE_WIDTH = 2  # bytes: Asterisk's slin
ASTERISK_RAW_RATE = 8000  # a ".raw" MixMonitor file is slin at 8 kHz
_CHUNK_FRAMES = 8000


@dataclass(frozen=True)
class WavInfo:
    channels: int
    rate: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.rate if self.rate else 0.0


def wav_info(path: Path) -> WavInfo:
    """Channels, rate and length of a WAV; ``wave.Error`` if it is not a readable WAV."""
    with wave.open(str(path), "rb") as wav:
        return WavInfo(wav.getnchannels(), wav.getframerate(), wav.getnframes())


def _samples(data: bytes) -> array.array[int]:
    samples = array.array("h")
    samples.frombytes(data[: len(data) - len(data) % SAMPLE_WIDTH])
    if sys.byteorder == "big":  # WAV is little-endian
        samples.byteswap()
    return samples


def raw_to_wav(raw: Path, target: Path, channels: int, rate: int = ASTERISK_RAW_RATE) -> None:
    """Wrap headerless slin (interleaved when ``channels`` > 1) into a WAV, streaming."""
    frame_bytes = SAMPLE_WIDTH * channels
    with raw.open("rb") as source, wave.open(str(target), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(rate)
        tail = b""
        while chunk := source.read(_CHUNK_FRAMES * frame_bytes):
            chunk = tail + chunk
            whole = len(chunk) - len(chunk) % frame_bytes
            wav.writeframesraw(chunk[:whole])
            tail = chunk[whole:]  # a frame cut by the read size goes with the next chunk


def peak_amplitude(
    path: Path, start: float = 0.0, end: float | None = None, channel: int | None = None
) -> int:
    """Largest absolute sample between ``start`` and ``end`` seconds (one channel or all)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != SAMPLE_WIDTH:
            raise ValueError(f"{path}: {wav.getsampwidth() * 8}-bit audio, expected 16-bit")
        channels, rate = wav.getnchannels(), wav.getframerate()
        first = min(int(start * rate), wav.getnframes())
        last = wav.getnframes() if end is None else min(int(end * rate), wav.getnframes())
        wav.setpos(first)
        peak = 0
        remaining = max(last - first, 0)
        while remaining:
            count = min(remaining, _CHUNK_FRAMES)
            samples = _samples(wav.readframes(count))
            if channel is not None:
                samples = samples[channel::channels]
            if samples:
                peak = max(peak, max(samples), -min(samples))
            remaining -= count
        return peak


def is_silent(
    path: Path, start: float, end: float, threshold: int = 0, channel: int | None = None
) -> bool:
    """True when no sample between ``start`` and ``end`` seconds exceeds ``threshold``."""
    return peak_amplitude(path, start, end, channel) <= threshold
