"""Shared plumbing of the ``callctl`` subcommands: config, output, API calls, errors.

Commands that need live Asterisk (agent login, recording pause) go through the running
controller's HTTP API; commands on data (campaign import, DNC, recording list) use the store
directly, so they work while the controller is down. ``--json`` gives machine-readable reads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from controller.config import Config, load_config
from controller.store import open_store
from controller.store.base import Database

EXIT_USAGE = 2
EXIT_FAILURE = 1


class CliError(Exception):
    """A command failed for a reason the user can act on; printed without a traceback."""

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.status = status


def iso_moment(text: str) -> datetime:
    """An argparse type: a date or time in ISO 8601, UTC when it names no zone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO-8601 date or time: {text!r} (e.g. 2026-01-31 or 2026-01-31T08:00)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"a number, 0 or more, not {text!r}")
    return value


MAX_LISTED = 100_000


def _listing_limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_LISTED:
        raise argparse.ArgumentTypeError(f"an integer from 1 to {MAX_LISTED}, not {text!r}")
    return int(text)


def add_listing_window(parser: argparse.ArgumentParser, moment: str) -> None:
    """``--since``, ``--until`` (of ``moment``: "started", "arrived"), ``--limit`` and
    ``--json`` of a listing read from the store."""
    parser.add_argument("--since", type=iso_moment,
                        help=f"{moment} at or after (e.g. 2026-01-31)")
    parser.add_argument("--until", type=iso_moment, help=f"{moment} before")
    parser.add_argument("--limit", type=_listing_limit, default=1000,
                        help="at most this many (1000)")
    add_json_flag(parser)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def add_domain(
    sub: argparse._SubParsersAction, name: str, *, help: str, description: str,
    metavar: str = "ACTION",
) -> argparse._SubParsersAction:
    """``callctl NAME``, a domain whose actions are its subcommands (one of them required)."""
    parser = sub.add_parser(name, help=help, description=description)
    return parser.add_subparsers(dest=f"{name}_command", metavar=metavar, required=True)


def config_of(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def read_input_file(path: Path) -> bytes:
    """An input file's bytes (a CSV to import), or a CliError naming the file and the cause."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from None


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def with_store(
    args: argparse.Namespace, body: Callable[[Database], Awaitable[Any]]
) -> Any:
    store = await open_store(config_of(args).store.url)
    try:
        return await body(store)
    finally:
        await store.close()


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def print_rows(args: argparse.Namespace, rows: Sequence[dict[str, Any]],
               columns: Sequence[str]) -> None:
    """A read's rows: JSON with ``--json``, else the table of ``columns``."""
    if args.json:
        print_json(rows)
    else:
        print_table(rows, columns)


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """A plain aligned table; empty input prints the header only."""
    cells = [[str(col) for col in columns]]
    cells += [
        ["" if row.get(col) is None else str(row.get(col)) for col in columns] for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for line in cells:
        print(
            "  ".join(
                value.ljust(width) for value, width in zip(line, widths, strict=True)
            ).rstrip()
        )


async def api_request(
    config: Config, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    """Call the running controller's HTTP API; raise ``CliError`` with its error message."""
    host = config.http.listen if config.http.listen not in ("0.0.0.0", "::") else "127.0.0.1"
    url = f"http://{host}:{config.http.port}{path}"
    headers = {"Authorization": f"Bearer {config.http.api_token.get_secret_value()}"}
    timeout = aiohttp.ClientTimeout(total=15)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, url, json=body, headers=headers) as response,
        ):
            payload = await response.json(content_type=None)
            if response.status >= 400:
                message = payload.get("error") if isinstance(payload, dict) else payload
                raise CliError(f"controller refused {method} {path}: {message}")
            return payload
    except aiohttp.ClientConnectionError as error:
        raise CliError(
            f"controller not reachable at {url} ({error}); is `callctl serve` running?"
        ) from None
