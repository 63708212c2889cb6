"""``callctl render-conf --out DIR``: the whole Asterisk side from the config and its secrets.

Also reachable as ``callctl queue render-conf`` (what rendered queues and the inbound dialplan
before the rest of the Asterisk side was generated too).
"""

from __future__ import annotations

import argparse
import grp
import pwd
from pathlib import Path

from controller.cli.common import EXIT_USAGE, CliError
from controller.config import config_path
from controller.site.deploy import (
    DeployError,
    check_out_dir,
    diff,
    load_site,
    render_files,
    render_kamailio_to,
    render_to,
)
from controller.site.secrets import SiteSecrets

DESCRIPTION = (
    "Render Asterisk's configuration (transports, agents' phones, trunk, AMI and ARI users, "
    "HTTP, RTP, queues, dialplans) from the controller's config into DIR. Secrets missing "
    "from the config are generated on first render into the owner-only store site.secrets_file,"
    " which the controller reads too. Prints the Asterisk commands that apply the changes."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="DIR", required=True, type=Path,
                        help="Asterisk's configuration folder (created if missing)")
    parser.add_argument("--diff", action="store_true",
                        help="only show what would change (secrets masked), write nothing")
    parser.add_argument("--show-secrets", action="store_true",
                        help="print the secrets (agents' passwords for their phones, AMI, ARI,"
                             " API token); with --diff, unmasked")
    parser.add_argument("--secrets-owner", metavar="USER[:GROUP]",
                        help="hand the secrets store to the user the controller runs as")
    parser.add_argument("--kamailio", metavar="DIR", type=Path,
                        help="also render the site's SIP proxy ([site.proxy]: Kamailio's "
                             "config, nodes, the agents' credentials) into DIR")
    parser.set_defaults(func=render)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("render-conf", help="write the whole Asterisk side of the site",
                            description=DESCRIPTION)
    add_arguments(parser)


def _owner(spec: str | None) -> tuple[int, int] | None:
    """``USER[:GROUP]`` (names or numbers) as (uid, gid); the group defaults to the user's."""
    if spec is None:
        return None
    user, _, group = spec.partition(":")
    try:
        uid, gid = (int(user), int(user)) if user.isdigit() else pwd.getpwnam(user)[2:4]
        if group:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise CliError(f"--secrets-owner {spec}: no such user or group on this host",
                       EXIT_USAGE) from None
    return uid, gid


def _print_secrets(secrets: SiteSecrets) -> None:
    print(f"ami user {secrets.ami_user} secret {secrets.ami_secret}")
    print(f"ari user {secrets.ari_user} password {secrets.ari_password}")
    print(f"api token {secrets.api_token}")
    for agent, password in secrets.agent_passwords.items():
        print(f"agent {agent} password {password}")


def render(args: argparse.Namespace) -> int:
    config_file = config_path(args.config)
    out: Path = args.out
    try:  # both folders before the store or any file is written: bad options exit 2
        check_out_dir(out, "--out", writable=not args.diff)
        if args.kamailio and not args.diff:
            check_out_dir(args.kamailio, "--kamailio")
    except DeployError as error:
        raise CliError(str(error), EXIT_USAGE) from None
    try:
        if args.diff:
            site = load_site(config_file)
            print(diff(site, render_files(site), out, show_secrets=args.show_secrets), end="")
            return 0
        result = render_to(config_file, out, secrets_owner=_owner(args.secrets_owner))
        proxy = render_kamailio_to(config_file, args.kamailio) if args.kamailio else None
    except DeployError as error:
        raise CliError(str(error)) from None
    store = result.site.secrets_file.resolve()
    print(f"secrets store {store}: {'written' if result.secrets_written else 'unchanged'}")
    print(f"{out}: {len(result.written)} files written, {len(result.unchanged)} unchanged")
    if result.commands:
        print("apply to a running Asterisk:")
        for command in result.commands:
            print(f"  {command}")
    if proxy is not None:
        print(f"{args.kamailio}: {len(proxy.written)} files written, "
              f"{len(proxy.unchanged)} unchanged")
        for command in proxy.commands:
            print(f"  {command}")
    if args.show_secrets:
        _print_secrets(result.site.secrets)
    return 0
