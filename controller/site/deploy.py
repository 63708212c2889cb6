"""``render-conf`` at the edges: read the config and the store, write or diff the files.

``render_to`` is the one path from a controller TOML to an Asterisk config folder: the command
line, the container entrypoint, the systemd unit and the testbed all go through it, so every
integration test boots what a site deploys. The secrets store is written (owner-only) before the
files that carry its values; only files whose text changed are rewritten, so a second render
changes nothing and ``--diff`` after it is empty.

The static files come from the share folder: ``$CALLCTL_SHARE_DIR`` (images and installs put
``asterisk-conf/`` and ``dialplans/`` there) or the source checkout this package runs from.
"""

from __future__ import annotations

import difflib
import grp
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from controller.config import (
    Config,
    ConfigError,
    parse_config,
    read_config_file,
    with_stored_secrets,
)
from controller.site.proxy import KAMAILIO_CFG, proxy_problems, render_kamailio
from controller.site.render import SiteProblems, agent_ids, render_site
from controller.site.secrets import (
    SecretsError,
    SiteSecrets,
    read_secrets,
    secrets_path,
    write_secrets,
)

SHARE_ENV = "CALLCTL_SHARE_DIR"
KAMAILIO_DIR = "kamailio"  # the proxy's static config, beside asterisk-conf/ in the share
STATIC_DIRS = ("asterisk-conf", "dialplans")
CHECKOUT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG_DIR = "/etc/asterisk"
RESTART = "core restart gracefully"
RELOADS = {
    "pjsip.conf": "module reload res_pjsip.so",
    "manager.conf": "manager reload",
    "ari.conf": "module reload res_ari.so",
    "http.conf": "module reload http",
    "rtp.conf": "module reload res_rtp_asterisk.so",
    "queues.conf": "module reload app_queue.so",
    "callctl-queues.conf": "module reload app_queue.so",
    "logger.conf": "logger reload",
    "musiconhold.conf": "moh reload",
    "amd.conf": "module reload app_amd.so",
    "prometheus.conf": "module reload res_prometheus.so",
    "cdr.conf": "module reload cdr",
}
DIALPLAN_RELOAD = "dialplan reload"
MASK = "********"


class DeployError(Exception):
    """Rendering cannot go on for a reason outside the config (share folder, output folder)."""


@dataclass(frozen=True)
class Site:
    """A validated config with its secrets: ``secrets`` is what the store must hold (new
    values generated in memory), ``stored`` what it holds now (None: no store yet)."""

    config_file: Path
    config: Config
    secrets_file: Path
    secrets: SiteSecrets
    stored: SiteSecrets | None


@dataclass(frozen=True)
class Rendered:
    """The outcome of ``render_to``: files rewritten, files already up to date, store."""

    written: list[str]
    unchanged: list[str]
    secrets_written: bool
    site: Site
    commands: list[str]  # what applies the written files to a running Asterisk


def load_site(config_file: Path) -> Site:
    """Read and validate ``config_file``, taking or generating (in memory) its secrets."""
    data = read_config_file(config_file)
    store = secrets_path(data, config_file.parent)
    try:
        stored = read_secrets(store)
    except SecretsError as error:
        raise ConfigError(str(config_file), [("site.secrets_file", str(error))]) from None
    base = stored or SiteSecrets.generate()
    config = parse_config(with_stored_secrets(data, config_file, base), str(config_file),
                          config_dir=config_file.parent)
    return Site(config_file, config, store, base.with_agents(agent_ids(config)), stored)


def share_dir() -> Path:
    """Where ``asterisk-conf/`` and ``dialplans/`` are read from."""
    explicit = os.environ.get(SHARE_ENV)
    share = Path(explicit) if explicit else CHECKOUT
    if not all((share / name).is_dir() for name in STATIC_DIRS):
        source = f"${SHARE_ENV}" if explicit else "the source checkout"
        raise DeployError(f"no {' and '.join(STATIC_DIRS)} in {share} ({source}); set "
                          f"{SHARE_ENV} to the folder holding them")
    return share


def static_files(share: Path) -> dict[str, str]:
    return {path.name: path.read_text() for name in STATIC_DIRS
            for path in sorted((share / name).glob("*.conf"))}


def render_files(
    site: Site, *, agent_contact: str | None = None, now: datetime | None = None
) -> dict[str, str]:
    try:
        return render_site(site.config, site.secrets, static_files(share_dir()),
                           agent_contact=agent_contact, now=now)
    except SiteProblems as error:
        raise ConfigError(str(site.config_file), error.problems) from None


def _current(out: Path, name: str) -> str | None:
    try:
        return (out / name).read_text()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise DeployError(f"cannot read {out / name}: {error.strerror}") from None


def check_out_dir(out: Path, option: str, *, writable: bool = True) -> None:
    """Refuse an output folder ``option`` names (``--out``) that is not a directory, cannot
    be created or (``writable``) cannot be written, before anything is written anywhere."""
    if out.exists() and not out.is_dir():
        raise DeployError(f"{option} {out}: not a directory")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise DeployError(f"{option} {out}: cannot be created, {existing} is not a directory")
    if writable and not os.access(existing, os.W_OK | os.X_OK):
        where = "not writable" if existing == out else f"cannot be created in {existing}"
        raise DeployError(f"{option} {out}: {where} (permission denied)")


def changed(files: Mapping[str, str], out: Path) -> list[str]:
    return [name for name, text in sorted(files.items()) if _current(out, name) != text]


def diff(site: Site, files: Mapping[str, str], out: Path, *, show_secrets: bool = False) -> str:
    """A unified diff of what rendering into ``out`` would change; secrets masked unless
    ``show_secrets``. Empty when nothing would change."""
    masks = [] if show_secrets else sorted(set(site.secrets.values()), key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(value) for value in masks)) if masks else None
    chunks = []
    if site.secrets != site.stored:
        what = "created" if site.stored is None else "updated (new agent passwords)"
        chunks.append(f"secrets store {site.secrets_file} would be {what}\n")
    for name in changed(files, out):
        before = _current(out, name)
        lines = difflib.unified_diff(
            (before or "").splitlines(keepends=True), files[name].splitlines(keepends=True),
            fromfile="/dev/null" if before is None else str(out / name), tofile=str(out / name))
        chunks.append("".join(lines))
    text = "".join(chunks)
    return pattern.sub(MASK, text) if pattern else text


def reload_commands(names: Iterable[str], config_dir: str) -> list[str]:
    """The CLI commands that make a running Asterisk use the rewritten files."""
    wanted: list[str] = []
    for name in names:
        command = RELOADS.get(name) or (
            DIALPLAN_RELOAD if name.startswith(("extensions", "callctl-", "dialer", "inbound"))
            else RESTART)
        if command not in wanted:
            wanted.append(command)
    if RESTART in wanted:
        wanted = [RESTART]
    option = "" if config_dir == DEFAULT_CONFIG_DIR else f" -C {config_dir}/asterisk.conf"
    return [f"asterisk{option} -rx '{command}'" for command in wanted]


def _group_id(site: Site) -> int | None:
    group = site.config.site.asterisk.run_group
    if group is None:
        return None
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ConfigError(str(site.config_file), [
            ("site.asterisk.run_group", f"no group {group!r} on this host")]) from None


def write_files(files: Mapping[str, str], out: Path, group: int | None) -> list[str]:
    """Write the files whose text changed (each replaced whole); every file ends owner-only,
    or readable by ``group`` (Asterisk's ``rungroup``) too. Returns the names written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DeployError(f"cannot create {out}: {error.strerror}") from None
    written = changed(files, out)
    for name in written:
        staging = out / f".{name}.tmp"
        try:
            staging.unlink(missing_ok=True)
            descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(files[name])
            staging.replace(out / name)
        except OSError as error:
            raise DeployError(f"cannot write {out / name}: {error.strerror}") from None
    for name in files:
        try:
            if group is not None:
                os.chown(out / name, -1, group)
            (out / name).chmod(0o600 if group is None else 0o640)
        except OSError as error:
            raise DeployError(f"cannot set the mode of {out / name}: {error.strerror}") from None
    return written


def save_secrets(site: Site, owner: tuple[int, int] | None = None) -> bool:
    """Write the store if it lacks something (owner-only); True when written. ``owner``
    hands it to the controller's user even when nothing changed."""
    written = site.secrets != site.stored
    try:
        if written:
            write_secrets(site.secrets_file, site.secrets, owner)
        elif owner is not None:
            os.chown(site.secrets_file, *owner)
    except OSError as error:
        raise DeployError(f"site.secrets_file {site.secrets_file}: cannot write: "
                          f"{error.strerror}") from None
    return written


def render_to(
    config_file: Path, out: Path, *, agent_contact: str | None = None,
    secrets_owner: tuple[int, int] | None = None, now: datetime | None = None,
) -> Rendered:
    """Render the Asterisk side of ``config_file`` into ``out``: store first, then files."""
    site = load_site(config_file)
    files = render_files(site, agent_contact=agent_contact, now=now)
    group = _group_id(site)
    check_out_dir(out, "--out")
    changed(files, out)  # an unreadable file in ``out`` stops it before the store is written
    secrets_written = save_secrets(site, secrets_owner)
    written = write_files(files, out, group)
    return Rendered(written, sorted(set(files) - set(written)), secrets_written, site,
                    reload_commands(written, site.config.site.asterisk.config_dir))


def render_kamailio_to(config_file: Path, out: Path) -> Rendered:
    """Render the SIP proxy of ``config_file``'s site (``[site.proxy]``) into ``out``, the
    folder Kamailio reads it from; the secrets store first, as for the Asterisk side."""
    site = load_site(config_file)
    problems = proxy_problems(site.config)
    if problems:
        raise ConfigError(str(config_file), problems)
    static = share_dir() / KAMAILIO_DIR / KAMAILIO_CFG
    try:
        static_cfg = static.read_text()
    except OSError as error:
        raise DeployError(f"{static}: {error.strerror}") from None
    check_out_dir(out, "--kamailio")
    files = render_kamailio(site.config, site.secrets.agent_passwords, static_cfg, out)
    changed(files, out)
    secrets_written = save_secrets(site)
    written = write_files(files, out, None)
    # db_text keeps the credentials it read: a restart, not a reload, applies any change
    commands = [f"restart kamailio -f {out.resolve() / KAMAILIO_CFG}"] if written else []
    return Rendered(written, sorted(set(files) - set(written)), secrets_written, site, commands)
