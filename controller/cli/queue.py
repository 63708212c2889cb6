"""``callctl queue status [--watch]``: callers waiting, longest wait, agents by state, today;
``callctl queue calls``: the inbound call report from the store."""

from __future__ import annotations

import argparse
import time
from typing import Any

from controller.cli import render_conf
from controller.cli.common import (
    add_domain,
    add_json_flag,
    add_listing_window,
    api_request,
    config_of,
    print_json,
    print_rows,
    print_table,
    run,
    with_store,
)
from controller.inbound.repository import CallFilter, InboundCallRepository
from controller.metrics.snapshot import QUEUE_OUTCOMES

CALL_COLUMNS = ("call_id", "arrived_at", "caller", "did", "queue", "outcome", "agent_id",
                "wait_seconds", "talk_seconds", "disposition", "rule")


def register(sub: argparse._SubParsersAction) -> None:
    queue_sub = add_domain(
        sub, "queue", help="queue status and the call report",
        description="Inspect inbound queues and their calls.",
    )
    status = queue_sub.add_parser("status", help="callers waiting, agents by state, today's calls")
    status.add_argument("--watch", action="store_true", help="refresh every second until Ctrl-C")
    add_json_flag(status)
    status.set_defaults(func=_status)
    calls = queue_sub.add_parser(
        "calls", help="the inbound call report: one row per call, newest first",
        description="Inbound calls from the store (works while the controller is down), newest "
        "first: arrival, caller, queue, outcome, agent, seconds waited and talked, disposition. "
        "Times are ISO-8601 (UTC if naive).",
    )
    calls.add_argument("--queue", help="only this queue")
    calls.add_argument("--agent", help="only calls this agent answered")
    calls.add_argument("--outcome", choices=QUEUE_OUTCOMES, help="only this outcome")
    add_listing_window(calls, "arrived")
    calls.set_defaults(func=_calls)
    render = queue_sub.add_parser(
        "render-conf", help="the same as `callctl render-conf` (the whole Asterisk side)",
        description=render_conf.DESCRIPTION,
    )
    render_conf.add_arguments(render)


def _status(args: argparse.Namespace) -> int:
    config = config_of(args)
    while True:
        queues = run(api_request(config, "GET", "/api/v1/queues"))["queues"]
        if args.json:
            print_json(queues)
        else:
            if args.watch:
                print("\033[2J\033[H", end="")
            print_table([_row(q) for q in queues], list(_row({}).keys()))
            for queue in queues:
                if said := queue.get("dispositions_today"):
                    counts = ", ".join(f"{name} {n}" for name, n in sorted(said.items()))
                    print(f"{queue['queue']} dispositions today: {counts}")
        if not args.watch:
            return 0
        time.sleep(1)


def _calls(args: argparse.Namespace) -> int:
    where = CallFilter(queue=args.queue, agent_id=args.agent, outcome=args.outcome,
                       since=args.since, until=args.until, limit=args.limit)
    rows = run(with_store(args, lambda db: InboundCallRepository(db).list_calls(where)))
    print_rows(args, rows, CALL_COLUMNS)
    return 0


def _row(queue: dict[str, Any]) -> dict[str, object]:
    agents = queue.get("agents", {})
    today = queue.get("today", {})
    ratio = queue.get("answered_ratio_today")
    level = queue.get("service_level_today")
    return {
        "queue": queue.get("queue", ""),
        "waiting": queue.get("callers", ""),
        "longest_wait": queue.get("longest_wait_s", ""),
        "available": agents.get("available", ""),
        "on_call": agents.get("on_call", ""),
        "ringing": agents.get("ringing", ""),
        "wrapup": agents.get("wrapup", ""),
        "paused": agents.get("paused", ""),
        "answered": today.get("answered", ""),
        "abandoned": today.get("abandoned", ""),
        "overflowed": today.get("overflowed", ""),
        "answered_%": "" if ratio is None else f"{ratio * 100:.1f}",
        "service_level_%": "" if level is None else f"{level * 100:.1f}",
    }
