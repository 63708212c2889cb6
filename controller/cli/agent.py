"""``callctl agent``: log agents in and out of their queues, pause and unpause them, list them.

These act on live Asterisk, so they go through the running controller's API.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from controller.cli.common import (
    add_json_flag,
    api_request,
    config_of,
    print_json,
    print_table,
    run,
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "agent",
        help="agent login, logout, pause, unpause, list",
        description="Manage agents (needs a running controller).",
    )
    agent_sub = parser.add_subparsers(dest="agent_command", metavar="ACTION", required=True)

    login = agent_sub.add_parser(
        "login",
        help="add an agent to its queues",
        description="Add the agent's phone (PJSIP/ID) to queues.",
    )
    login.add_argument("agent_id", help="agent id, e.g. 1001 (its PJSIP endpoint)")
    login.add_argument(
        "--queue",
        action="append",
        dest="queues",
        metavar="QUEUE",
        help="queue to join (repeat; default: the agent's configured queues)",
    )
    login.set_defaults(func=_login)

    logout = agent_sub.add_parser("logout", help="remove an agent from all queues")
    logout.add_argument("agent_id")
    logout.set_defaults(func=_post("logout"))

    pause = agent_sub.add_parser("pause", help="pause an agent (no queue calls) with a reason")
    pause.add_argument("agent_id")
    pause.add_argument("--reason", default="", help="reason code, e.g. lunch, training")
    pause.set_defaults(func=_pause)

    unpause = agent_sub.add_parser("unpause", help="make a paused agent available again")
    unpause.add_argument("agent_id")
    unpause.set_defaults(func=_post("unpause"))

    listing = agent_sub.add_parser("list", help="list agents with their queues and states")
    add_json_flag(listing)
    listing.set_defaults(func=_list)


def _login(args: argparse.Namespace) -> int:
    body = {"queues": args.queues} if args.queues else {}
    result = run(
        api_request(config_of(args), "POST", f"/api/v1/agents/{args.agent_id}/login", body)
    )
    print(f"agent {result['agent_id']} logged in to {', '.join(result['queues'])}")
    return 0


def _post(action: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        run(api_request(config_of(args), "POST", f"/api/v1/agents/{args.agent_id}/{action}"))
        print(f"agent {args.agent_id}: {action} done")
        return 0

    return handler


def _pause(args: argparse.Namespace) -> int:
    run(
        api_request(
            config_of(args),
            "POST",
            f"/api/v1/agents/{args.agent_id}/pause",
            {"reason": args.reason},
        )
    )
    print(f"agent {args.agent_id} paused" + (f" ({args.reason})" if args.reason else ""))
    return 0


def _list(args: argparse.Namespace) -> int:
    agents = run(api_request(config_of(args), "GET", "/api/v1/agents"))["agents"]
    if args.json:
        print_json(agents)
        return 0
    rows = [
        {
            "agent": a["agent_id"],
            "logged_in": "yes" if a["logged_in"] else "no",
            "paused": a["pause_reason"] or "yes" if a["paused"] else "",
            "queues": ",".join(a["queues"]),
            "state": ",".join(f"{q}={s}" for q, s in sorted(a["state"].items())),
        }
        for a in agents
    ]
    print_table(rows, ["agent", "logged_in", "paused", "queues", "state"])
    return 0
