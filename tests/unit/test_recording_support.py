"""Shared helpers of the recording tests: synthetic audio, a temp controller config, clocks."""

from __future__ import annotations

import array
import math
import wave
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

RATE = 8000
T0 = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def tone(seconds: float, amplitude: int = 8000, hz: float = 440.0) -> list[int]:
    count = int(seconds * RATE)
    return [int(amplitude * math.sin(2 * math.pi * hz * n / RATE)) for n in range(count)]


def silence(seconds: float) -> list[int]:
    return [0] * int(seconds * RATE)


def pcm(samples: Sequence[int]) -> bytes:
    return array.array("h", samples).tobytes()


def interleave(left: Sequence[int], right: Sequence[int]) -> list[int]:
    return [s for pair in zip(left, right, strict=True) for s in pair]


def write_wav(path: Path, samples: Sequence[int], channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm(samples))
    return path


def write_config(tmp_path: Path, recording_toml: str = "", store_url: str | None = None) -> Path:
    """A minimal controller TOML whose recordings (and store, unless ``store_url`` names one)
    live under ``tmp_path``."""
    config = tmp_path / "controller.toml"
    url = store_url or f"sqlite:///{tmp_path / 'store.db'}"
    config.write_text(
        "[http]\napi_token = \"t0ken\"\n"
        "[ami]\nusername = \"callctl\"\nsecret = \"s\"\n"
        "[ari]\nusername = \"callctl\"\npassword = \"p\"\n"
        f"[store]\nurl = \"{url}\"\n"
        f"[recording]\nroot = \"{tmp_path / 'recordings'}\"\n{recording_toml}",
        encoding="utf-8",
    )
    return config


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
