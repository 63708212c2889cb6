"""``callctl check-config``: validate the TOML and exit 0 (valid) or 2 (with the problems)."""

from __future__ import annotations

import argparse

from controller.cli.common import config_of


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "check-config",
        help="validate the configuration file",
        description="Validate the configuration; exit 2 naming each wrong key.",
    )
    parser.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    inbound = config_of(args).inbound
    print(
        f"configuration OK (inbound numbers: {len(inbound.numbers)},"
        f" schedules: {len(inbound.schedules)}, queues: {len(inbound.queues)})"
    )
    return 0
