"""``callctl serve``: run the controller in the foreground until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio

from controller.app import serve
from controller.cli.common import CliError, config_of
from controller.logs import configure_logging


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the controller (AMI, ARI, HTTP API, metrics)",
        description="Run the controller in the foreground; SIGTERM or Ctrl-C stops it cleanly.",
    )
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    config = config_of(args)
    configure_logging(config.logging.level)
    try:
        asyncio.run(serve(config))
    except OSError as error:
        raise CliError(f"cannot listen on {config.http.listen}:{config.http.port}: "
                       f"{error.strerror}") from None
    return 0
