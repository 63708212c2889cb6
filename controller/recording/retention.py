"""Retention purge: delete recordings older than their policy's maximum age, mark them purged.

Only rows that are ``complete`` and whose age exceeds the retention of today's policy are
touched (the pure ``policy.is_expired`` decides); a newer file is never opened. The metadata row
stays (status ``purged``) so an audit still sees that a call was recorded and when it was erased.
``run_daily`` is the loop the controller schedules (e.g. from an aiohttp ``cleanup_ctx``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from controller.logs import get_logger
from controller.recording import policy
from controller.recording.config import RecordingConfig
from controller.recording.files import RecordingFileError, RecordingFiles
from controller.recording.repository import RecordingRepository
from controller.store.base import from_iso

log = get_logger("recording.retention")

PURGE_INTERVAL = timedelta(days=1)
MIN_RETENTION = timedelta(days=1)  # RecordingPolicy.retention_days >= 1


@dataclass
class PurgeReport:
    dry_run: bool
    purged: list[str] = field(default_factory=list)  # call ids
    missing_files: list[str] = field(default_factory=list)  # already gone, marked anyway
    errors: dict[str, str] = field(default_factory=dict)  # call id -> why it was kept


async def purge_expired(
    repo: RecordingRepository,
    config: RecordingConfig,
    now: datetime,
    dry_run: bool = False,
) -> PurgeReport:
    report = PurgeReport(dry_run=dry_run)
    # every retention is at least one day, so nothing younger can be due
    candidates = await repo.complete_ended_before(now - MIN_RETENTION)
    files = RecordingFiles(config.root)
    for row in candidates:
        call_id = row["call_id"]
        days = policy.retention_for(config, row["policy"], row["retention_days"])
        if not policy.is_expired(from_iso(row["ended_at"]), days, now):
            continue
        if dry_run:
            report.purged.append(call_id)
            continue
        try:
            existed = await asyncio.to_thread(files.delete, row["path"])
        except (OSError, RecordingFileError) as error:
            report.errors[call_id] = str(error)
            log.error("recording.purge_failed", call_id=call_id, error=str(error))
            continue
        if await repo.mark_purged(call_id, now):
            report.purged.append(call_id)
            if not existed:
                report.missing_files.append(call_id)
            log.info("recording.purged", call_id=call_id, policy=row["policy"], file_found=existed)
    return report


async def run_daily(
    repo: RecordingRepository, config: RecordingConfig, clock: Callable[[], datetime]
) -> None:
    """Purge now and then once a day, until cancelled; one failed run does not stop the loop."""
    while True:
        try:
            report = await purge_expired(repo, config, clock())
            log.info(
                "recording.purge_run", purged=len(report.purged), errors=len(report.errors)
            )
        except Exception as error:  # the loop must survive a store outage
            log.error("recording.purge_run_failed", error=str(error))
        await asyncio.sleep(PURGE_INTERVAL.total_seconds())
