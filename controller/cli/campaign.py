"""``callctl campaign``: create campaigns, update their settings, import leads, change their
state, watch and export.

Everything here works on the store directly: the campaign runner inside the controller follows
the state stored here, so ``start``/``pause``/``stop`` work whether or not the controller runs.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from controller.cli import common
from controller.cli.common import CliError
from controller.dialer.leads import LeadFileError, parse_leads
from controller.dialer.policy import CAMPAIGN_TRANSITIONS, RECYCLABLE_RESULTS, RecycleRule, Result
from controller.dialer.repository import (
    Campaign,
    DialerRepository,
    DialerStoreError,
    RecycledLeads,
    SettingsUpdate,
    UnknownDisposition,
)
from controller.dialer.settings import (
    LEGAL_ABANDON_PERCENT,
    CampaignSettings,
    load_campaign_settings,
    settings_toml,
)
from controller.store.base import Database

EXPORT_COLUMNS = (
    "phone",
    "name",
    "timezone",
    "lead_state",
    "attempts",
    "last_result",
    "next_attempt_at",
    "on_dnc",
    "attempt_no",
    "attempt_id",
    "started_at",
    "ended_at",
    "result",
    "cause",
    "agent",
    "talk_seconds",
    "disposition",
)
_ACTION_HELP = {
    "start": "start dialing a created campaign",
    "pause": "pause a running campaign (calls in progress finish)",
    "resume": "resume a paused campaign",
    "stop": "stop a campaign for good",
}


def register(sub: argparse._SubParsersAction) -> None:
    actions = common.add_domain(
        sub, "campaign",
        help="outbound campaigns: create, update, import leads, start/stop, status, export",
        description="Manage outbound campaigns stored in the controller's store.",
    )

    _settings_file_action(
        actions, "create", _create,
        summary="create a campaign from a settings TOML file",
        description="Validate a campaign settings file and store it.",
    )
    update = _settings_file_action(
        actions, "update", _update,
        summary="replace a campaign's settings, running or not",
        description="Validate a campaign settings file and store it in place of the campaign's"
        " settings. A running campaign follows them at the controller's next tick: calls placed"
        " from then on use them, calls up keep theirs. A stopped campaign's settings are final,"
        " and abandon.windows_hours never changes.",
    )
    common.add_json_flag(update)

    shown = actions.add_parser(
        "settings",
        help="print a campaign's settings as a TOML file (edit it, then update)",
        description="Print the settings stored for a campaign, as a campaign TOML file (or"
        " JSON with --json), with their revision.",
    )
    shown.add_argument("name", help="campaign name")
    common.add_json_flag(shown)
    shown.set_defaults(func=_settings)

    imp = actions.add_parser(
        "import",
        help="import leads from a CSV file",
        description="Import leads (atomic; re-importing the same file changes nothing). "
        "Invalid rows are reported with their line number and skipped.",
    )
    imp.add_argument("name", help="campaign name")
    imp.add_argument("file", help="CSV file with a phone column")
    imp.add_argument(
        "--encoding",
        help="force the file's encoding (default: UTF-8, falling "
        "back to cp1252/latin-1 with a warning)",
    )
    common.add_json_flag(imp)
    imp.set_defaults(func=_import)

    recycle = actions.add_parser(
        "recycle",
        help="give finished leads a fresh set of attempts, picked by result or disposition",
        description="Make finished leads (done, or out of attempts) dialable again with the"
        " campaign's max_attempts afresh, picked by their last attempt's result or disposition"
        " (any one named). Numbers on a do-not-call list stay finished; calling hours and the"
        " re-call gap after an abandon still hold.",
    )
    recycle.add_argument("name", help="campaign name")
    recycle.add_argument(
        "--result",
        action="append",
        default=[],
        choices=sorted(result.value for result in RECYCLABLE_RESULTS),
        help="last result to recycle (repeatable)",
    )
    recycle.add_argument(
        "--disposition", action="append", default=[], metavar="NAME",
        help="last disposition to recycle (repeatable)",
    )
    recycle.add_argument(
        "--older-than",
        type=common.non_negative_float,
        default=0.0,
        metavar="HOURS",
        help="only leads whose last call ended at least this long ago (default 0)",
    )
    recycle.add_argument(
        "--dry-run", action="store_true", help="count the leads, change nothing"
    )
    common.add_json_flag(recycle)
    recycle.set_defaults(func=_recycle)

    for action in CAMPAIGN_TRANSITIONS:
        text = _ACTION_HELP[action]
        change = actions.add_parser(action, help=text, description=text.capitalize() + ".")
        change.add_argument("name", help="campaign name")
        change.set_defaults(func=_change_state, action=action)

    status = actions.add_parser(
        "status",
        help="show a campaign's progress",
        description="Leads by state, attempts by result, abandon rate.",
    )
    status.add_argument("name", help="campaign name")
    status.add_argument("--watch", action="store_true", help="refresh until interrupted")
    status.add_argument(
        "--interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="refresh period with --watch (default 2)",
    )
    common.add_json_flag(status)
    status.set_defaults(func=_status)

    listing = actions.add_parser("list", help="list campaigns", description="List campaigns.")
    common.add_json_flag(listing)
    listing.set_defaults(func=_list)

    export = actions.add_parser(
        "export",
        help="export leads and every attempt to CSV",
        description="Write one row per attempt (and one per never-called lead) to a CSV file.",
    )
    export.add_argument("name", help="campaign name")
    export.add_argument("out", help="output CSV file ('-' for standard output)")
    export.set_defaults(func=_export)


def _settings_file_action(
    actions: argparse._SubParsersAction, name: str, func: Callable[[argparse.Namespace], int],
    *, summary: str, description: str,
) -> argparse.ArgumentParser:
    """An action on one campaign that reads a whole settings file (create, update)."""
    parser: argparse.ArgumentParser = actions.add_parser(
        name, help=summary, description=description
    )
    parser.add_argument("name", help="campaign name")
    parser.add_argument(
        "--config",
        dest="campaign_config",
        metavar="FILE",
        required=True,
        help="campaign settings (TOML): the whole file",
    )
    parser.set_defaults(func=func)
    return parser


def _now() -> datetime:
    return datetime.now(UTC)


def in_dialer_store(args: argparse.Namespace, body: Any) -> Any:
    """Run ``body(repository)`` against the store, turning refusals into CLI errors."""

    async def run(db: Database) -> Any:
        try:
            return await body(DialerRepository(db))
        except DialerStoreError as error:
            raise CliError(str(error)) from None

    return common.run(common.with_store(args, run))


def _create(args: argparse.Namespace) -> int:
    settings = load_campaign_settings(args.campaign_config)
    in_dialer_store(args, lambda repo: repo.create_campaign(args.name, settings, _now()))
    print(f"campaign {args.name!r} created ({settings.dialing_mode}, state created)")
    _warn_of_abandon_target(settings)
    return 0


def _update(args: argparse.Namespace) -> int:
    settings = load_campaign_settings(args.campaign_config)
    update: SettingsUpdate = in_dialer_store(
        args, lambda repo: repo.update_settings(args.name, settings, _now())
    )
    if args.json:
        common.print_json(update.report())
    elif update.changed:
        print(
            f"campaign {args.name!r} settings revision {update.revision}:"
            f" {', '.join(update.changed)} changed"
        )
    else:
        print(f"campaign {args.name!r} settings unchanged (revision {update.revision})")
    _warn_of_abandon_target(settings)
    return 0


def _settings(args: argparse.Namespace) -> int:
    found: Campaign = in_dialer_store(args, lambda repo: repo.campaign(args.name))
    if args.json:
        common.print_json(found.settings_report())
    else:
        print(f"# campaign {found.name!r}, settings revision {found.settings_revision}")
        print(settings_toml(found.settings), end="")
    return 0


def _warn_of_abandon_target(settings: CampaignSettings) -> None:
    target = settings.abandon.target_percent
    if target > LEGAL_ABANDON_PERCENT:
        print(
            f"warning: abandon.target_percent {target:g} is above the {LEGAL_ABANDON_PERCENT:g} %"
            " the FTC (US) and Ofcom (UK) allow",
            file=sys.stderr,
        )


def _import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    data = common.read_input_file(path)
    started = time.perf_counter()

    async def body(repo: DialerRepository) -> Any:
        settings = (await repo.campaign(args.name)).settings
        try:
            # phone number parsing is CPU-bound (seconds for 100k rows): keep it off the loop
            parsed = await asyncio.to_thread(
                parse_leads, data, settings.default_region, args.encoding
            )
        except LeadFileError as error:
            raise CliError(f"{path}: {error}") from None
        return parsed, await repo.import_leads(args.name, parsed.leads, _now())

    parsed, counts = in_dialer_store(args, body)
    report = {
        "campaign": args.name,
        "file": str(path),
        "encoding": parsed.encoding,
        "leads": len(parsed.leads),
        "new": counts.new,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
        "duplicates_merged": parsed.duplicates,
        "empty_lines": parsed.empty_lines,
        "invalid_rows": [{"line": p.line, "reason": p.reason} for p in parsed.problems],
        "on_dnc": counts.on_dnc,
        "no_timezone": [{"line": lead.line, "phone": lead.phone} for lead in parsed.no_timezone],
        "warnings": parsed.warnings,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if args.json:
        common.print_json(report)
        return 0
    for warning in parsed.warnings:
        print(f"warning: {path}: {warning}", file=sys.stderr)
    for problem in parsed.problems:
        print(f"{path}: {problem.render()} (skipped)", file=sys.stderr)
    for lead in parsed.no_timezone:
        print(
            f"{path}: line {lead.line}: {lead.phone}: timezone unknown or ambiguous "
            "(imported, not dialed until a timezone is given)",
            file=sys.stderr,
        )
    print(
        f"imported {path} into {args.name!r} in {report['seconds']} s: "
        f"{counts.new} new, {counts.updated} updated, {counts.unchanged} unchanged, "
        f"{parsed.duplicates} duplicates merged, {len(parsed.problems)} invalid rows skipped, "
        f"{counts.on_dnc} on DNC (never dialed), {len(parsed.no_timezone)} without timezone"
    )
    return 0


def _recycle(args: argparse.Namespace) -> int:
    try:
        rule = RecycleRule(
            results=frozenset(Result(result) for result in args.result),
            dispositions=frozenset(args.disposition),
            older_than=timedelta(hours=args.older_than),
        )
    except ValueError as error:
        raise CliError(f"campaign recycle: {error}", common.EXIT_USAGE) from None

    async def body(repo: DialerRepository) -> RecycledLeads:
        try:
            return await repo.recycle_leads(args.name, rule, _now(), dry_run=args.dry_run)
        except UnknownDisposition as error:
            raise CliError(f"campaign recycle --disposition: {error}", common.EXIT_USAGE) from None

    outcome: RecycledLeads = in_dialer_store(args, body)
    if args.json:
        common.print_json(outcome.report())
        return 0
    verb = "would recycle" if outcome.dry_run else "recycled"
    text = f"campaign {args.name!r}: {verb} {outcome.recycled} lead(s)"
    if outcome.on_dnc:
        text += f"; {outcome.on_dnc} on a do-not-call list stay finished"
    print(text)
    return 0


def _change_state(args: argparse.Namespace) -> int:
    old, new = in_dialer_store(args, lambda repo: repo.change_state(args.name, args.action, _now()))
    print(f"campaign {args.name!r}: {old} -> {new}")
    return 0


def _status(args: argparse.Namespace) -> int:
    while True:
        report = in_dialer_store(args, lambda repo: repo.status(args.name, _now()))
        if args.json:
            common.print_json(report)
        else:
            _print_status(report)
        if not args.watch:
            return 0
        sys.stdout.flush()
        time.sleep(args.interval)


def _print_status(report: dict[str, Any]) -> None:
    print(f"campaign {report['campaign']}: {report['state']} ({report['dialing_mode']})")
    print("leads:    " + ", ".join(f"{k} {v}" for k, v in report["leads"].items()))
    print("attempts: " + ", ".join(f"{k} {v}" for k, v in report["attempts"].items()))
    if report["dispositions"]:
        print("disposed: " + ", ".join(f"{k} {v}" for k, v in report["dispositions"].items()))
    rates = ", ".join(
        f"{window} {'-' if rate is None else f'{rate}%'}"
        for window, rate in report["abandon_percent"].items()
    )
    print(f"abandon:  {rates} (target {report['abandon_target_percent']}%)")


def _list(args: argparse.Namespace) -> int:
    rows = in_dialer_store(args, lambda repo: repo.list_campaigns())
    common.print_rows(args, rows, ("name", "state", "leads", "done", "updated_at"))
    return 0


def _export(args: argparse.Namespace) -> int:
    async def body(repo: DialerRepository) -> list[dict[str, Any]]:
        await repo.campaign(args.name)
        return [dict(row) async for row in repo.export_rows(args.name)]

    rows = in_dialer_store(args, body)
    custom_keys: dict[str, None] = {}
    for row in rows:
        custom = json.loads(row.pop("custom_json"))
        # a custom column named like a result column must not overwrite it
        row.update({f"custom_{k}" if k in EXPORT_COLUMNS else k: v for k, v in custom.items()})
        custom_keys.update(dict.fromkeys(k for k in row if k not in EXPORT_COLUMNS))
    columns = [*EXPORT_COLUMNS, *custom_keys]
    if args.out == "-":
        _write_csv(sys.stdout, rows, columns)
    else:
        try:
            with open(args.out, "w", newline="", encoding="utf-8") as out:
                _write_csv(out, rows, columns)
        except OSError as error:
            raise CliError(f"cannot write {args.out}: {error.strerror}") from None
        print(f"exported {len(rows)} rows of campaign {args.name!r} to {args.out}")
    return 0


def _write_csv(stream: Any, rows: list[dict[str, Any]], columns: list[str]) -> None:
    writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
