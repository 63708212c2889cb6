"""``callctl dnc``: the do-not-call lists (one global, one per campaign).

Numbers are stored in E.164. The dialer checks the lists when it claims leads, so a number added
here is never dialed from then on, whatever was imported before. Numbers without ``+CC`` are
read in ``--region``, or in the campaign's default region for a campaign list.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.cli import common
from controller.cli.campaign import in_dialer_store
from controller.cli.common import CliError
from controller.dialer.leads import LeadFileError, normalise_number, parse_number_list
from controller.dialer.repository import GLOBAL_DNC, DialerRepository


def register(sub: argparse._SubParsersAction) -> None:
    actions = common.add_domain(
        sub, "dnc", help="do-not-call lists: add, remove, import, list",
        description="Manage the global do-not-call list, or a campaign's with --campaign.",
    )

    def action(name: str, text: str) -> argparse.ArgumentParser:
        cmd = actions.add_parser(name, help=text, description=text.capitalize() + ".")
        cmd.add_argument("--campaign", metavar="NAME",
                         help="the campaign's list instead of the global one")
        cmd.add_argument("--region", metavar="CC",
                         help="region of numbers without +CC (default: the campaign's)")
        return cmd

    add = action("add", "add numbers to a do-not-call list")
    add.add_argument("numbers", nargs="+", metavar="NUMBER")
    add.set_defaults(func=_add)

    remove = action("remove", "remove numbers from a do-not-call list")
    remove.add_argument("numbers", nargs="+", metavar="NUMBER")
    remove.set_defaults(func=_remove)

    imp = action("import", "add every number of a file (one per line, or first CSV column)")
    imp.add_argument("file")
    imp.set_defaults(func=_import)

    listing = action("list", "list the numbers of a do-not-call list")
    common.add_json_flag(listing)
    listing.set_defaults(func=_list)


def _scope(args: argparse.Namespace) -> str:
    return args.campaign or GLOBAL_DNC


def _label(args: argparse.Namespace) -> str:
    return f"campaign {args.campaign!r} DNC list" if args.campaign else "global DNC list"


async def _region(repo: DialerRepository, args: argparse.Namespace) -> str | None:
    if args.region:
        return args.region.upper()
    if args.campaign:
        return (await repo.campaign(args.campaign)).settings.default_region
    return None


async def _normalised(repo: DialerRepository, args: argparse.Namespace) -> list[str]:
    region = await _region(repo, args)
    numbers = []
    for raw in args.numbers:
        try:
            numbers.append(normalise_number(raw, region or "ZZ"))
        except ValueError as error:
            hint = "" if region else " (give +CC or --region)"
            raise CliError(f"{error}{hint}") from None
    return numbers


def _add(args: argparse.Namespace) -> int:
    async def body(repo: DialerRepository) -> int:
        return await repo.add_dnc(_scope(args), await _normalised(repo, args), _now(), "cli")

    added = in_dialer_store(args, body)
    print(f"{added} number(s) added to the {_label(args)}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    async def body(repo: DialerRepository) -> int:
        return await repo.remove_dnc(_scope(args), await _normalised(repo, args))

    removed = in_dialer_store(args, body)
    print(f"{removed} number(s) removed from the {_label(args)}")
    return 0


def _import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    data = common.read_input_file(path)

    async def body(repo: DialerRepository) -> tuple[int, int, list[Any], list[str]]:
        try:
            numbers, problems, warnings = parse_number_list(data, await _region(repo, args))
        except LeadFileError as error:
            raise CliError(f"{path}: {error}") from None
        added = await repo.add_dnc(_scope(args), numbers, _now(), path.name)
        return added, len(numbers), problems, warnings

    added, read, problems, warnings = in_dialer_store(args, body)
    for warning in warnings:
        print(f"warning: {path}: {warning}", file=sys.stderr)
    for problem in problems:
        print(f"{path}: {problem.render()} (skipped)", file=sys.stderr)
    print(f"{read} number(s) read from {path}, {added} new on the {_label(args)}, "
          f"{len(problems)} invalid line(s) skipped")
    return 0


def _list(args: argparse.Namespace) -> int:
    async def body(repo: DialerRepository) -> Any:
        if args.campaign:
            await repo.campaign(args.campaign)
        return await repo.list_dnc(_scope(args))

    rows = in_dialer_store(args, body)
    common.print_rows(args, rows, ("phone", "added_at", "source"))
    return 0


def _now() -> datetime:
    return datetime.now(UTC)
