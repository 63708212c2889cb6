"""Recording configuration: policies per queue and campaign, storage roots, retention.

A policy says whether a call is recorded (all, none, or a sampled percentage), in mono or stereo
(caller and agent on separate channels, for transcription and QA), whether a consent announcement
is played before the agent is connected, and how long the file is kept. A queue's or campaign's
own policy wins over ``default``; an absent ``[recording]`` section records nothing.

Asterisk runs in a chroot, so a file has two names: ``root`` is the directory as the controller
sees it and ``asterisk_root`` the same directory as Asterisk sees it (default: equal to ``root``).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import Field, model_validator

from controller.section import Section

RecordMode = Literal["all", "none", "sample"]
ChannelLayout = Literal["mono", "stereo"]


class RecordingPolicy(Section):
    """What to do with the calls of one queue or campaign (or of all others: ``default``)."""

    record: RecordMode = "none"
    sample_percent: float | None = Field(
        default=None, ge=0, le=100, description="share of calls recorded when record = 'sample'"
    )
    channels: ChannelLayout = "mono"
    consent_announcement: str | None = Field(
        default=None,
        min_length=1,
        pattern=r"^[A-Za-z0-9_/.-]+$",
        description="Asterisk sound name played once before the agent is connected",
    )
    retention_days: int | None = Field(
        default=None, ge=1, description="delete recordings older than this; none keeps forever"
    )

    @model_validator(mode="after")
    def _sample_percent_only_when_sampling(self) -> RecordingPolicy:
        if self.record == "sample" and self.sample_percent is None:
            raise ValueError("sample_percent is required when record = 'sample'")
        if self.record != "sample" and self.sample_percent is not None:
            raise ValueError("sample_percent is only allowed when record = 'sample'")
        return self


class RecordingConfig(Section):
    root: Path = Field(
        default=Path("var/recordings"), description="recordings directory, controller's view"
    )
    asterisk_root: PurePosixPath | None = Field(
        default=None, description="the same directory as Asterisk (in its chroot) sees it"
    )
    min_free_bytes: int = Field(
        default=100 * 1024 * 1024, ge=0,
        description="below this much free disk a call is not recorded (it still goes on)",
    )
    default: RecordingPolicy = RecordingPolicy()
    queues: dict[str, RecordingPolicy] = {}
    campaigns: dict[str, RecordingPolicy] = {}

    @model_validator(mode="after")
    def _asterisk_root_is_absolute(self) -> RecordingConfig:
        if self.asterisk_root is not None and not self.asterisk_root.is_absolute():
            raise ValueError(
                f"asterisk_root must be an absolute path, got {str(self.asterisk_root)!r}"
            )
        return self

    @property
    def asterisk_dir(self) -> PurePosixPath:
        """The recordings root as Asterisk sees it."""
        if self.asterisk_root is not None:
            return self.asterisk_root
        return PurePosixPath(self.root.absolute().as_posix())
