"""``callctl agent``: log agents in and out of their queues, pause and unpause them, list them.

These act on live Asterisk, so they go through the running controller's API.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from controller.agents.repository import StatusLogRepository
from controller.agents.stats import AgentStats
from controller.cli.common import (
    EXIT_USAGE,
    CliError,
    add_domain,
    add_json_flag,
    api_request,
    config_of,
    iso_moment,
    print_json,
    print_table,
    run,
    with_store,
)
from controller.config import config_path
from controller.site.deploy import load_site
from controller.site.secrets import write_secrets
from controller.store.base import Database


def register(sub: argparse._SubParsersAction) -> None:
    agent_sub = add_domain(
        sub, "agent", help="agent login, logout, pause, unpause, end-wrapup, list",
        description="Manage agents (needs a running controller).",
    )

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
    _supervisor_flag(logout)
    logout.set_defaults(func=_post("logout"))

    pause = agent_sub.add_parser("pause", help="pause an agent (no queue calls) with a reason")
    pause.add_argument("agent_id")
    pause.add_argument("--reason", default="", help="reason code, e.g. lunch, training")
    _supervisor_flag(pause)
    pause.set_defaults(func=_pause)

    unpause = agent_sub.add_parser("unpause", help="make a paused agent available again")
    unpause.add_argument("agent_id")
    unpause.set_defaults(func=_post("unpause"))

    end_wrapup = agent_sub.add_parser(
        "end-wrapup", help="end an agent's wrap-up now, as *47 does (the next call comes at once)",
        description="End the agent's wrap-up on every node, as its phone's *47 does.")
    end_wrapup.add_argument("agent_id")
    _supervisor_flag(end_wrapup)
    end_wrapup.set_defaults(func=_post("end-wrapup"))

    credentials = agent_sub.add_parser(
        "credentials",
        help="show (or --reset) the SIP username and password of an agent's phone",
        description="Read from the site's secrets store (no controller needed). --reset writes "
        "a new password into the store; `callctl render-conf` then puts it into pjsip.conf.",
    )
    credentials.add_argument("agent_id")
    credentials.add_argument("--reset", action="store_true", help="generate a new password")
    add_json_flag(credentials)
    credentials.set_defaults(func=_credentials)

    stats = agent_sub.add_parser(
        "stats", help="per agent: calls handled (inbound and outbound), AHT, time logged in, "
        "talking, in wrap-up, paused by reason, occupancy, dispositions",
        description="Read from the store (no controller needed). `calls` counts queue calls "
        "and campaign calls; `outbound` is the campaign calls among them.")
    stats.add_argument("--since", metavar="ISO", type=iso_moment,
                       help="from this time (default: 24 hours ago); UTC unless it says")
    add_json_flag(stats)
    stats.set_defaults(func=_stats)

    listing = agent_sub.add_parser("list", help="list agents with their queues and states")
    add_json_flag(listing)
    listing.set_defaults(func=_list)


def _supervisor_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--supervisor", metavar="ID",
                        help="act as this supervisor (refused unless it supervises the agent's "
                             "team)")


def _supervisor_body(args: argparse.Namespace) -> dict[str, str]:
    return {"supervisor": args.supervisor} if getattr(args, "supervisor", None) else {}


def _login(args: argparse.Namespace) -> int:
    body = {"queues": args.queues} if args.queues else {}
    result = run(
        api_request(config_of(args), "POST", f"/api/v1/agents/{args.agent_id}/login", body)
    )
    print(f"agent {result['agent_id']} logged in to {', '.join(result['queues'])}")
    return 0


def _post(action: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        run(api_request(config_of(args), "POST", f"/api/v1/agents/{args.agent_id}/{action}",
                        _supervisor_body(args) or None))
        print(f"agent {args.agent_id}: {action} done")
        return 0

    return handler


def _pause(args: argparse.Namespace) -> int:
    run(
        api_request(
            config_of(args),
            "POST",
            f"/api/v1/agents/{args.agent_id}/pause",
            {"reason": args.reason, **_supervisor_body(args)},
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


def _credentials(args: argparse.Namespace) -> int:
    site = load_site(config_path(args.config))
    if args.agent_id not in site.config.agent_accounts:
        raise CliError(f"agent {args.agent_id} is not configured (see [agents] in "
                       f"{site.config_file})", EXIT_USAGE)
    secrets = site.secrets.with_new_password(args.agent_id) if args.reset else site.secrets
    if secrets != site.stored:
        write_secrets(site.secrets_file, secrets)
    sip = site.config.site.sip
    shown = {"agent_id": args.agent_id, "username": args.agent_id,
             "password": secrets.agent_passwords[args.agent_id],
             "registrar": f"{sip.bind}:{sip.port}", "transport": sip.agent_transport}
    if args.json:
        print_json(shown)
    else:
        for key, value in shown.items():
            print(f"{key}: {value}")
    if args.reset:
        print(f"new password stored in {site.secrets_file}: run `callctl render-conf --out DIR`"
              " and the reload it prints, then set it on the phone", file=sys.stderr)
    return 0


def _pairs(counts: Mapping[str, object]) -> str:
    return " ".join(f"{key}={value}" for key, value in counts.items())


def _stats(args: argparse.Namespace) -> int:
    config = config_of(args)
    now = datetime.now(UTC)
    since = args.since or now - timedelta(days=1)

    async def read(store: Database) -> list[AgentStats]:
        return await StatusLogRepository(store).stats(config.inbound.wrapup_seconds(), since,
                                                      now)

    rows = [stats.as_row() for stats in run(with_store(args, read))]
    if args.json:
        print_json({"since": since.isoformat(), "until": now.isoformat(), "agents": rows})
        return 0
    print_table([{**row, "paused_s": _pairs(row["paused_s"]),
                  "dispositions": _pairs(row["dispositions"])} for row in rows],
                ["agent", "calls", "outbound", "aht_s", "logged_in_s", "talk_s", "wrapup_s",
                 "paused_s", "occupancy", "dispositions"])
    return 0
