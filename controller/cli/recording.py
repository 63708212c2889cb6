"""``callctl recording``: list, fetch and purge recordings; pause/resume a live one (PCI).

``list``, ``get`` and ``purge`` work on the store and the recordings directory directly, so they
work while the controller is down; ``pause`` and ``resume`` act on a live call and go through the
controller's API. Recordings are named by their call id, never by a path.
"""

from __future__ import annotations

import argparse
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.cli.common import (
    CliError,
    add_domain,
    add_json_flag,
    add_listing_window,
    api_request,
    config_of,
    print_json,
    print_rows,
    run,
    with_store,
)
from controller.recording.files import RecordingFileError, RecordingFiles
from controller.recording.policy import InvalidCallId, check_call_id
from controller.recording.repository import (
    COMPLETE,
    RecordingFilter,
    RecordingRepository,
)
from controller.recording.retention import purge_expired

LIST_COLUMNS = (
    "call_id",
    "started_at",
    "duration_seconds",
    "direction",
    "queue",
    "campaign",
    "agent_id",
    "caller",
    "callee",
    "policy",
)


def register(sub: argparse._SubParsersAction) -> None:
    commands = add_domain(
        sub, "recording", help="call recordings: list, get, purge, pause/resume",
        description="Call recordings, named by call id.",
    )

    listing = commands.add_parser(
        "list",
        help="list complete recordings",
        description="List complete recordings, newest first; times are ISO-8601 (UTC if naive).",
    )
    listing.add_argument("--queue", help="only this queue")
    listing.add_argument("--campaign", help="only this campaign")
    listing.add_argument("--agent", help="only this agent id")
    add_listing_window(listing, "started")
    listing.set_defaults(func=_list)

    get = commands.add_parser(
        "get",
        help="copy one recording's audio to a file",
        description="Copy a recording's WAV to FILE after checking its sha256.",
    )
    get.add_argument("call_id", metavar="ID", help="the recording's call id")
    get.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write")
    get.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    get.set_defaults(func=_get)

    purge = commands.add_parser(
        "purge",
        help="delete recordings past their retention",
        description="Delete recordings older than their policy's retention_days.",
    )
    purge.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    add_json_flag(purge)
    purge.set_defaults(func=_purge)

    for action, verb in (("pause", "silence"), ("resume", "resume")):
        live = commands.add_parser(
            action,
            help=f"{verb} the recording of a live call (PCI)",
            description=f"Ask the running controller to {verb} the recording of a live call.",
        )
        live.add_argument("call_id", metavar="CALL", help="the live call's id")
        live.set_defaults(func=_live_action, action=action)


def _call_id(text: str) -> str:
    try:
        return check_call_id(text)
    except InvalidCallId as error:
        raise CliError(str(error), status=2) from None


def _list(args: argparse.Namespace) -> int:
    where = RecordingFilter(
        queue=args.queue,
        campaign=args.campaign,
        agent_id=args.agent,
        since=args.since,
        until=args.until,
        limit=args.limit,
    )
    rows = run(with_store(args, lambda db: RecordingRepository(db).list_complete(where)))
    print_rows(args, rows, LIST_COLUMNS)
    return 0


def _get(args: argparse.Namespace) -> int:
    call_id = _call_id(args.call_id)
    output = Path(args.output)
    if output.exists() and not args.force:
        raise CliError(f"{output} exists; pass --force to overwrite it")
    row: dict[str, Any] | None = run(
        with_store(args, lambda db: RecordingRepository(db).get(call_id))
    )
    if row is None:
        raise CliError(f"no recording for call {call_id}")
    if row["status"] != COMPLETE:
        raise CliError(f"recording of call {call_id} is {row['status']}, not available")
    files = RecordingFiles(config_of(args).recording.root)
    try:
        source = files.verified(row["path"], row["sha256"])
        staging = output.with_name(f".{output.name}.part")
        shutil.copyfile(source, staging)
        os.replace(staging, output)
    except RecordingFileError as error:
        raise CliError(str(error)) from None
    except OSError as error:
        raise CliError(f"cannot write {output}: {error.strerror}") from None
    print(f"wrote {output} ({row['size_bytes']} bytes, sha256 verified)")
    return 0


def _purge(args: argparse.Namespace) -> int:
    config = config_of(args).recording
    now = datetime.now(UTC)
    report = run(
        with_store(
            args, lambda db: purge_expired(RecordingRepository(db), config, now, args.dry_run)
        )
    )
    if args.json:
        print_json(
            {
                "dry_run": report.dry_run,
                "purged": report.purged,
                "missing_files": report.missing_files,
                "errors": report.errors,
            }
        )
    else:
        verb = "would purge" if report.dry_run else "purged"
        print(f"{verb} {len(report.purged)} recording(s)")
        for call_id in report.purged:
            print(f"  {call_id}")
        for call_id, error in report.errors.items():
            print(f"  kept {call_id}: {error}")
    return 1 if report.errors else 0


def _live_action(args: argparse.Namespace) -> int:
    call_id = _call_id(args.call_id)
    config = config_of(args)
    path = f"/api/v1/recordings/{call_id}/{args.action}"
    reply = run(api_request(config, "POST", path))
    state = reply.get("state", args.action) if isinstance(reply, dict) else args.action
    print(f"recording of call {call_id}: {state}")
    return 0
