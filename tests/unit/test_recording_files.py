"""Recording files: safe paths, finalisation (mono, stereo), sha256 checks, WAV helpers vs sox."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from controller.recording import audio
from controller.recording.files import (
    IntegrityError,
    RecordingFileError,
    RecordingFiles,
    UnsafePath,
    sha256_of,
)

from .test_recording_support import RATE, interleave, pcm, silence, tone, write_wav

DAY = PurePosixPath("2026/03/14")


@pytest.fixture
def files(tmp_path: Path) -> RecordingFiles:
    return RecordingFiles(tmp_path / "recordings")


@pytest.mark.parametrize(
    "relative", ["../x.wav", "2026/../../x.wav", "/etc/passwd", "", "a/../../b"]
)
def test_traversal_is_refused(files: RecordingFiles, relative: str) -> None:
    with pytest.raises(UnsafePath):
        files.resolve(relative)


def test_symlink_out_of_root_is_refused(files: RecordingFiles, tmp_path: Path) -> None:
    files.root.mkdir()
    (tmp_path / "secret.wav").write_bytes(b"x")
    (files.root / "link.wav").symlink_to(tmp_path / "secret.wav")
    with pytest.raises(UnsafePath):
        files.resolve("link.wav")


def test_prepare_creates_day_directory(files: RecordingFiles) -> None:
    files.prepare(DAY, min_free_bytes=0)
    assert (files.root / "2026" / "03" / "14").is_dir()


def test_prepare_fails_when_root_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a dir")
    with pytest.raises(RecordingFileError, match="cannot create"):
        RecordingFiles(tmp_path / "file").prepare(DAY, min_free_bytes=0)


def test_prepare_fails_when_disk_is_too_full(files: RecordingFiles) -> None:
    with pytest.raises(RecordingFileError, match="bytes free"):
        files.prepare(DAY, min_free_bytes=1 << 62)


def test_finalize_mono_publishes_wav_with_facts(files: RecordingFiles) -> None:
    capture = DAY / "c1.partial.wav"
    write_wav(files.root / capture, tone(1.5))
    facts = files.finalize(capture, DAY / "c1.wav", stereo=False)
    final = files.root / DAY / "c1.wav"
    assert not (files.root / capture).exists()
    assert facts.duration == pytest.approx(1.5)
    assert facts.size == final.stat().st_size
    assert facts.sha256 == sha256_of(final)


def test_finalize_stereo_wraps_interleaved_raw(files: RecordingFiles) -> None:
    caller, agent = tone(1.0) + silence(1.0), silence(1.0) + tone(1.0, hz=1000)
    capture = DAY / "c2.partial.raw"
    (files.root / DAY).mkdir(parents=True)
    (files.root / capture).write_bytes(pcm(interleave(caller, agent)) + b"\x01")  # torn frame
    facts = files.finalize(capture, DAY / "c2.wav", stereo=True)
    final = files.root / DAY / "c2.wav"
    info = audio.wav_info(final)
    assert (info.channels, info.rate, facts.duration) == (2, RATE, pytest.approx(2.0))
    assert audio.is_silent(final, 1.0, 2.0, channel=0)
    assert not audio.is_silent(final, 0.0, 1.0, channel=0)
    assert audio.is_silent(final, 0.0, 1.0, channel=1)
    assert not audio.is_silent(final, 1.0, 2.0, channel=1)
    assert not list((files.root / DAY).glob(".*tmp"))


def test_finalize_without_capture_file_fails(files: RecordingFiles) -> None:
    with pytest.raises(RecordingFileError, match="wrote no recording"):
        files.finalize(DAY / "none.partial.wav", DAY / "none.wav", stereo=False)


def test_finalize_garbage_leaves_nothing_listed(files: RecordingFiles) -> None:
    capture = DAY / "bad.partial.wav"
    (files.root / DAY).mkdir(parents=True)
    (files.root / capture).write_bytes(b"not a wav at all")
    with pytest.raises(RecordingFileError):
        files.finalize(capture, DAY / "bad.wav", stereo=False)
    assert not (files.root / DAY / "bad.wav").exists()
    assert (files.root / capture).exists()  # kept for a human to inspect


def test_verified_accepts_intact_and_refuses_tampered(files: RecordingFiles) -> None:
    path = write_wav(files.root / DAY / "c3.wav", tone(0.5))
    digest = sha256_of(path)
    assert files.verified(str(DAY / "c3.wav"), digest) == path.resolve()
    with path.open("r+b") as handle:
        handle.seek(100)
        handle.write(b"\x7f")
    with pytest.raises(IntegrityError, match="sha256"):
        files.verified(str(DAY / "c3.wav"), digest)


def test_verified_missing_file_is_a_clear_error(files: RecordingFiles) -> None:
    with pytest.raises(RecordingFileError, match="cannot read"):
        files.verified("2026/01/01/gone.wav", "0" * 64)


def test_delete_reports_whether_file_existed(files: RecordingFiles) -> None:
    write_wav(files.root / DAY / "c4.wav", tone(0.1))
    assert files.delete(str(DAY / "c4.wav")) is True
    assert files.delete(str(DAY / "c4.wav")) is False


def test_silence_window_and_peak(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", tone(1.0) + silence(2.0) + tone(1.0))
    assert audio.is_silent(path, 1.0, 3.0)
    assert not audio.is_silent(path, 0.5, 1.5)
    assert audio.peak_amplitude(path) == pytest.approx(8000, abs=1)


def _sox_stat(path: Path) -> dict[str, float]:
    result = subprocess.run(
        ["sox", str(path), "-n", "stat"], capture_output=True, text=True, timeout=30, check=True
    )
    stats = {}
    for line in result.stderr.splitlines():
        match = re.match(r"^(.+?):\s+(-?[\d.]+)$", line.strip())
        if match:
            stats[match.group(1).strip()] = float(match.group(2))
    return stats


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_helpers_agree_with_sox(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "b.wav", tone(2.5, amplitude=16384))
    stats = _sox_stat(path)
    assert audio.wav_info(path).duration == pytest.approx(stats["Length (seconds)"])
    assert audio.peak_amplitude(path) / 32768 == pytest.approx(stats["Maximum amplitude"], abs=1e-3)
