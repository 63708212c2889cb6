"""``callctl supervise listen|whisper|barge --supervisor ID --agent ID``: ring the supervisor's
phone into a session on the agent's call (through the running controller, which checks the
team); ``callctl supervise log`` lists the audited sessions."""

from __future__ import annotations

import argparse
from urllib.parse import urlencode

from controller.agents.supervision import SupervisionMode
from controller.cli.common import (
    add_domain,
    add_json_flag,
    api_request,
    config_of,
    iso_moment,
    print_json,
    print_table,
    run,
)


def register(sub: argparse._SubParsersAction) -> None:
    modes = add_domain(
        sub, "supervise",
        help="listen to, whisper to or barge in on an agent's call; the audit log",
        description="Needs a running controller. The supervisor's phone rings; on answer it "
        "joins the agent's call (only a supervisor of the agent's team may).", metavar="MODE",
    )
    for mode in SupervisionMode:
        start = modes.add_parser(mode.value, help=f"{mode.value}: ring the supervisor's phone")
        start.add_argument("--supervisor", required=True, metavar="ID")
        start.add_argument("--agent", required=True, metavar="ID")
        start.set_defaults(func=_start, mode=mode)
    log = modes.add_parser("log", help="supervision sessions (who, whom, mode, start, end)")
    log.add_argument("--since", metavar="ISO", type=iso_moment,
                     help="from this time (default: 24 hours ago)")
    add_json_flag(log)
    log.set_defaults(func=_log)


def _start(args: argparse.Namespace) -> int:
    run(api_request(config_of(args), "POST", "/api/v1/supervise", {
        "supervisor": args.supervisor, "agent": args.agent, "mode": args.mode.value}))
    print(f"ringing {args.supervisor} to {args.mode.value} agent {args.agent}")
    return 0


def _log(args: argparse.Namespace) -> int:
    # encoded: an offset's '+' would reach the API as a space
    query = f"?{urlencode({'since': args.since.isoformat()})}" if args.since else ""
    sessions = run(api_request(config_of(args), "GET", f"/api/v1/supervision{query}"))["sessions"]
    if args.json:
        print_json(sessions)
        return 0
    print_table(sessions, ["started_at", "ended_at", "supervisor", "agent_id", "mode",
                           "refused"])
    return 0
