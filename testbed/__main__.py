"""``python -m testbed``: the demo Asterisk instance and its controller config, for the Makefile.

    python -m testbed asterisk start|stop|status|cli CMD
    python -m testbed config           # writes var/controller.toml
    python -m testbed traffic ...      # sipp traffic (see testbed.traffic --help)

The demo instance keeps its state (secrets, console log, database) in ``var/`` of the checkout
and uses the standard ports (SIP 5060, AMI 5038, HTTP/ARI 8088).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from controller.config import Config
from testbed.asterisk import DEMO_PORTS, REPO_DIR, AsteriskError, AsteriskInstance, ensure_root
from testbed.controller_config import write_controller_config

VAR_DIR = REPO_DIR / "var"
DEMO_HTTP_PORT = 8080
DEMO_CONFIG = VAR_DIR / "controller.toml"


def demo_instance() -> AsteriskInstance:
    return AsteriskInstance("demo", VAR_DIR / "asterisk", DEMO_PORTS)


def _write_demo_config(output: Path) -> Config:
    return write_controller_config(
        demo_instance(), output, http_port=DEMO_HTTP_PORT, store_path=VAR_DIR / "callctl.db"
    )


def _asterisk(args: argparse.Namespace) -> int:
    instance = demo_instance()
    if args.action == "start":
        instance.inbound = _write_demo_config(DEMO_CONFIG).inbound
        instance.start()
        print(f"asterisk demo running (pid {instance.pid()}): SIP 127.0.0.1:{DEMO_PORTS.sip},"
              f" AMI {DEMO_PORTS.ami}, ARI {instance.ari_url}; log {instance.console_log}")
        print("softphone accounts (register to 127.0.0.1:5060, UDP; call 5000 to reach support):")
        for agent, password in instance.secrets.agent_passwords.items():
            print(f"  user {agent}  password {password}")
    elif args.action == "stop":
        instance.stop()
        print("asterisk demo stopped")
    elif args.action == "status":
        pid = instance.pid()
        print(f"asterisk demo running (pid {pid})" if pid else "asterisk demo not running")
        return 0 if pid else 3
    elif args.action == "cli":
        print(instance.cli(" ".join(args.command)), end="")
    return 0


def _config(args: argparse.Namespace) -> int:
    config = _write_demo_config(Path(args.output))
    print(f"wrote {args.output} (API on {config.http.listen}:{config.http.port})")
    return 0


def _root(_args: argparse.Namespace) -> int:
    print(f"asterisk root ready: {ensure_root()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m testbed", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    asterisk = sub.add_parser("asterisk", help="start, stop or inspect the demo Asterisk",
                              description="Control the demo Asterisk instance (state in var/).")
    asterisk.add_argument("action", choices=("start", "stop", "status", "cli"))
    asterisk.add_argument("command", nargs="*", help="CLI command for `cli`")
    asterisk.set_defaults(func=_asterisk)
    config = sub.add_parser("config", help="render the controller config for the demo",
                            description="Write the controller TOML wired to the demo instance.")
    config.add_argument("--output", default=str(DEMO_CONFIG),
                        help="target file (default: var/controller.toml)")
    config.set_defaults(func=_config)
    root = sub.add_parser("root", help="build the Asterisk root if needed",
                          description="Build the Debian sid root with Asterisk (idempotent).")
    root.set_defaults(func=_root)
    # listed for --help; main() hands everything after `traffic` to testbed.traffic
    sub.add_parser("traffic", help="real SIP traffic against a running instance "
                   "(python -m testbed traffic --help)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["traffic"]:
        from testbed.traffic import main as traffic_main

        return traffic_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except AsteriskError as error:
        print(f"testbed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
