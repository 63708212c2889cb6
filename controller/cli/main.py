"""``callctl``: the command line of the contact-center controller.

Each domain module exposes ``register(subparsers)`` and sets ``func`` on its parsers; ``main``
only dispatches and turns known errors into a message and an exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from controller.cli import (
    agent,
    callback,
    campaign,
    check_config,
    dnc,
    node,
    queue,
    recording,
    render_conf,
    schedule,
    serve,
    simulate,
    supervise,
)
from controller.cli.common import EXIT_USAGE, CliError
from controller.config import ConfigError
from controller.logs import configure_logging
from controller.store.base import StoreError

GROUPS = (serve, check_config, render_conf, node, agent, supervise, queue, schedule, callback,
          campaign, dnc, recording, simulate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callctl", description="Contact-center controller for Asterisk (inbound ACD, dialer)."
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="controller TOML (default: $CALLCTL_CONFIG or ./controller.toml)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # commands log only problems, on stderr, so their stdout stays clean (--json);
    # `serve` switches to the configured level
    configure_logging("warning")
    try:
        return int(args.func(args) or 0)
    except ConfigError as error:
        print(error.render(), file=sys.stderr)
        return EXIT_USAGE
    except CliError as error:
        print(f"callctl: {error}", file=sys.stderr)
        return error.status
    except StoreError as error:
        print(f"callctl: store: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`callctl ... --json | head`): not an error of ours; stdout is
        # pointed at devnull so the interpreter's final flush cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
