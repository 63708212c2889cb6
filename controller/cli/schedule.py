"""``callctl schedule list | override NAME open|closed|auto``: whether each schedule is open
now, and a supervisor's override of its hours (``auto`` lifts it). Both go through the running
controller's API, so an override takes effect at once (other controllers read it from the
store within seconds)."""

from __future__ import annotations

import argparse

from controller.cli.common import (
    add_domain,
    add_json_flag,
    api_request,
    config_of,
    print_json,
    print_rows,
    run,
)

LIST_COLUMNS = ("schedule", "open", "hours_open", "override", "override_set_at")


def register(sub: argparse._SubParsersAction) -> None:
    commands = add_domain(
        sub, "schedule", help="schedules: list, override",
        description="Opening schedules: whether each is open now; open or close one now.",
    )
    listing = commands.add_parser(
        "list", help="each schedule: open now, by its hours, its override",
        description="List the schedules: open now, open by its hours, the override in force.",
    )
    add_json_flag(listing)
    listing.set_defaults(func=_list)
    override = commands.add_parser(
        "override", help="open or close a schedule now (auto: its hours decide again)",
        description="Open or close a schedule now, whatever its hours say, until `auto`.",
    )
    override.add_argument("schedule", metavar="NAME", help="a schedule of inbound.schedules")
    override.add_argument("state", choices=("open", "closed", "auto"))
    add_json_flag(override)
    override.set_defaults(func=_override)


def _list(args: argparse.Namespace) -> int:
    rows = run(api_request(config_of(args), "GET", "/api/v1/schedules"))["schedules"]
    print_rows(args, rows, LIST_COLUMNS)
    return 0


def _override(args: argparse.Namespace) -> int:
    reply = run(api_request(
        config_of(args), "PUT", f"/api/v1/schedules/{args.schedule}/override",
        {"state": args.state, "by": "cli"},
    ))
    if args.json:
        print_json(reply)
    else:
        state = "open" if reply["open"] else "closed"
        print(f"schedule {args.schedule}: {state} (override {reply['override']})")
    return 0
