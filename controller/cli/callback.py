"""``callctl callback``: list the queue callbacks, cancel a pending one.

``list`` reads the store, so it works while the controller is down; ``cancel`` goes through
the controller's API, which hangs up the callback's placeholder or call if it has one.
"""

from __future__ import annotations

import argparse

from controller.callbacks.machine import State
from controller.callbacks.repository import CallbackRepository, describe
from controller.cli.common import (
    EXIT_USAGE,
    CliError,
    add_domain,
    add_json_flag,
    api_request,
    config_of,
    print_json,
    print_rows,
    run,
    with_store,
)

LIST_COLUMNS = (
    "callback_id", "queue", "phone", "state", "attempts", "booked_at", "not_before", "owner"
)


def _states(text: str) -> list[State]:
    try:
        return [State(name.strip()) for name in text.split(",") if name.strip()]
    except ValueError:
        known = ", ".join(state.value for state in State)
        raise argparse.ArgumentTypeError(f"unknown state in '{text}' (one of {known})") from None


def register(sub: argparse._SubParsersAction) -> None:
    commands = add_domain(
        sub, "callback", help="queue callbacks: list, cancel",
        description="Queue callbacks (callers who pressed 1 to be called back).",
    )
    listing = commands.add_parser(
        "list", help="list callbacks, newest first", description="List callbacks, newest first."
    )
    listing.add_argument(
        "--state", type=_states, default=[], help="only these states (e.g. queued,retry)"
    )
    listing.add_argument("--limit", type=int, default=200, help="at most this many (200)")
    add_json_flag(listing)
    listing.set_defaults(func=_list)
    cancel = commands.add_parser(
        "cancel", help="cancel a pending callback", description="Cancel a pending callback."
    )
    cancel.add_argument("callback_id", metavar="ID", help="the callback's id (callback list)")
    add_json_flag(cancel)
    cancel.set_defaults(func=_cancel)


def _list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1", EXIT_USAGE)
    listing = run(
        with_store(args, lambda db: CallbackRepository(db).listing(args.state, args.limit))
    )
    rows = [describe(listed.callback, listed.owner) for listed in listing]
    print_rows(args, rows, LIST_COLUMNS)
    return 0


def _cancel(args: argparse.Namespace) -> int:
    if not args.callback_id.isalnum():
        raise CliError(f"'{args.callback_id}' is not a callback id", EXIT_USAGE)
    reply = run(
        api_request(config_of(args), "POST", f"/api/v1/callbacks/{args.callback_id}/cancel")
    )
    if args.json:
        print_json(reply)
    else:
        print(f"callback {args.callback_id}: {reply.get('state', 'cancelled')}")
    return 0
