"""The recordings directory: safe paths, readiness checks, finalisation, verified reads, deletes.

Every path comes from the store as a path relative to the root and is resolved here, refusing
anything that would land outside the root (``..``, absolute paths, symlinks out). A recording is
finalised by writing the listed ``<call-id>.wav`` next to Asterisk's capture file and renaming it
into place, so a listed file is always complete. These functions block (disk I/O, hashing): async
callers run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import wave
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from controller.recording import audio

HASH_CHUNK = 1024 * 1024


class RecordingFileError(Exception):
    """A recording file cannot be written, found or trusted."""


class UnsafePath(RecordingFileError):
    """A path that would leave the recordings root."""


class IntegrityError(RecordingFileError):
    """A file whose content no longer matches the sha256 stored when it was made."""


@dataclass(frozen=True)
class FileFacts:
    size: int
    sha256: str
    duration: float


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class RecordingFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def resolve(self, relative: str | PurePosixPath) -> Path:
        """The controller-side path of a stored relative path; ``UnsafePath`` if it escapes."""
        posix = PurePosixPath(relative)
        if posix.is_absolute() or ".." in posix.parts or not posix.parts:
            raise UnsafePath(f"refused path {str(relative)!r}: not inside the recordings root")
        root = self.root.resolve()
        path = (root / posix).resolve()
        if not path.is_relative_to(root):
            raise UnsafePath(f"refused path {str(relative)!r}: it leads outside the root")
        return path

    def prepare(self, relative_dir: PurePosixPath, min_free_bytes: int) -> None:
        """Create the day directory and check it can take a recording; ``RecordingFileError``."""
        directory = self.resolve(relative_dir)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RecordingFileError(f"cannot create {directory}: {error.strerror}") from None
        if not os.access(directory, os.W_OK | os.X_OK):
            raise RecordingFileError(f"recordings directory {directory} is not writable")
        free = shutil.disk_usage(directory).free
        if free < min_free_bytes:
            raise RecordingFileError(
                f"only {free} bytes free under {directory}, need {min_free_bytes}"
            )

    def size(self, relative: str | PurePosixPath) -> int | None:
        """The file's size in bytes; None when it does not exist."""
        try:
            return self.resolve(relative).stat().st_size
        except FileNotFoundError:
            return None

    def finalize(
        self, capture: PurePosixPath, final: PurePosixPath, stereo: bool
    ) -> FileFacts:
        """Turn Asterisk's capture file into the listed WAV; the capture is removed on success."""
        source, target = self.resolve(capture), self.resolve(final)
        if not source.is_file():
            raise RecordingFileError(f"Asterisk wrote no recording at {source}")
        try:
            if stereo:
                return self._wrap_stereo(source, target)
            facts = self._facts(source)
            os.replace(source, target)
        except (OSError, wave.Error, EOFError) as error:
            raise RecordingFileError(f"cannot finalise {source}: {error}") from None
        return facts

    def _wrap_stereo(self, source: Path, target: Path) -> FileFacts:
        staging = target.with_name(f".{target.name}.tmp")
        try:
            audio.raw_to_wav(source, staging, channels=2)
            facts = self._facts(staging)
            os.replace(staging, target)
        finally:
            staging.unlink(missing_ok=True)
        source.unlink()
        return facts

    @staticmethod
    def _facts(path: Path) -> FileFacts:
        return FileFacts(path.stat().st_size, sha256_of(path), audio.wav_info(path).duration)

    def verified(self, relative: str, expected_sha256: str) -> Path:
        """The file's path, after checking its content against the stored sha256."""
        path = self.resolve(relative)
        try:
            actual = sha256_of(path)
        except OSError as error:
            raise RecordingFileError(f"cannot read {relative}: {error.strerror}") from None
        if actual != expected_sha256:
            raise IntegrityError(f"recording {relative} fails its sha256 check: file was altered")
        return path

    def delete(self, relative: str) -> bool:
        """Remove a file; False when it was already gone."""
        path = self.resolve(relative)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True
