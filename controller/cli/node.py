"""``callctl node``: the site's nodes as the store knows them; forget one taken out of service.

Both read and write the store, so they work while every controller is down (``roster.py`` says
what a row shows and when forgetting is refused).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from controller.cli.common import (
    EXIT_USAGE,
    CliError,
    add_domain,
    add_json_flag,
    print_json,
    print_table,
    run,
    with_store,
)
from controller.dialer.repository import DialerRepository
from controller.dialer.workers import WorkerLease
from controller.inbound.repository import InboundCallRepository
from controller.nodes.repository import NodeLeaseRepository
from controller.nodes.roster import NodeView, forget_refusal, homeless_agents, roster
from controller.store.base import Database

LIST_COLUMNS = ("name", "node", "dialer", "dialer_agents", "covers", "open_calls", "open_attempts")


def register(sub: argparse._SubParsersAction) -> None:
    commands = add_domain(
        sub, "node", help="the site's nodes: list, forget one retired",
        description="The site's nodes as the store knows them: each controller's node lease,"
        " its dialer worker and the agents it seats.",
    )
    listing = commands.add_parser(
        "list", help="list the nodes, alive or gone",
        description="List every node and dialer worker the store knows: whether each lease is"
        " alive, the agents each worker seats (all: its dialer.agents is empty), the agents of"
        " gone workers it covers, and its open calls and attempts.",
    )
    add_json_flag(listing)
    listing.set_defaults(func=_list)
    forget = commands.add_parser(
        "forget", help="delete a retired node's leases",
        description="Delete the node lease and dialer worker row of a node taken out of service"
        " for good, so the others stop covering its agents and listing it. Refused while its"
        " controller's leases are alive or the store holds open calls or attempts of it.",
    )
    forget.add_argument("name", help="the node's name (node list)")
    add_json_flag(forget)
    forget.set_defaults(func=_forget)


async def _site(db: Database, now: datetime) -> tuple[list[NodeView], list[WorkerLease]]:
    dialer = DialerRepository(db)
    workers = await dialer.worker_leases()
    views = roster(
        await NodeLeaseRepository(db).leases(),
        workers,
        await InboundCallRepository(db).open_call_counts(),
        await dialer.open_attempt_counts(),
        now,
    )
    return views, workers


def _list(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)

    async def body(db: Database) -> list[NodeView]:
        return (await _site(db, now))[0]

    views = run(with_store(args, body))
    if args.json:
        print_json([_described(view, now) for view in views])
    else:
        print_table([_row(view, now) for view in views], LIST_COLUMNS)
    return 0


def _forget(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)

    async def body(db: Database) -> list[str]:
        views, workers = await _site(db, now)
        view = next((view for view in views if view.name == args.name), None)
        if view is None:
            known = ", ".join(view.name for view in views) or "none"
            raise CliError(f"node {args.name!r}: not in the store (known: {known})", EXIT_USAGE)
        refusal = forget_refusal(view, now)
        if refusal is not None:
            raise CliError(f"node {args.name!r} not forgotten: {refusal}")
        # each delete holds only if still true now (a controller may have come back meanwhile)
        kept = []
        if view.node_lease_until and not await NodeLeaseRepository(db).forget(args.name, now):
            kept.append("node lease")
        if view.dialer_lease_until and not await DialerRepository(db).forget_worker(
            args.name, now
        ):
            kept.append("dialer worker row")
        if kept:
            raise CliError(f"node {args.name!r}: its {' and '.join(kept)} changed meanwhile"
                           " (its controller is back, or left an open call); see node list")
        return homeless_agents(args.name, workers)

    homeless = run(with_store(args, body))
    if args.json:
        print_json({"forgotten": args.name, "agents_seated_by_no_worker": homeless})
        return 0
    print(f"node {args.name!r} forgotten")
    if homeless:
        print(f"its agents {', '.join(homeless)} are seated by no dialer worker now: name them"
              " in a live worker's dialer.agents")
    return 0


def _lease_state(until: datetime | None, now: datetime) -> str:
    if until is None:
        return "-"
    if until > now:
        return "alive"
    return f"gone {_age(now - until)}"


def _age(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _row(view: NodeView, now: datetime) -> dict[str, Any]:
    agents = view.dialer_agents
    return {
        "name": view.name,
        "node": _lease_state(view.node_lease_until, now),
        "dialer": _lease_state(view.dialer_lease_until, now),
        "dialer_agents": "-" if agents is None else ",".join(agents) or "all",
        "covers": ",".join(view.covers) or "-",
        "open_calls": view.open_calls,
        "open_attempts": view.open_attempts,
    }


def _described(view: NodeView, now: datetime) -> dict[str, Any]:
    def lease(until: datetime | None) -> dict[str, Any] | None:
        return None if until is None else {"until": until.isoformat(), "alive": until > now}

    return {
        "name": view.name,
        "node_lease": lease(view.node_lease_until),
        "dialer_lease": lease(view.dialer_lease_until),
        "dialer_agents": None if view.dialer_agents is None else list(view.dialer_agents),
        "covers": list(view.covers),
        "open_calls": view.open_calls,
        "open_attempts": view.open_attempts,
    }
