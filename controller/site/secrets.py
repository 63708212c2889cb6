"""The site's secrets store: one owner-only JSON file both sides of the site read.

``callctl render-conf`` generates what is missing (AMI and ARI credentials, the API token, one
password per agent) with ``secrets``, the operating system's strong random source, and writes
the file with mode 0600 before anything that uses it. The controller's config loader fills the
same keys from it (``fill_config``) when the TOML leaves them out, so Asterisk's
``manager.conf`` and the controller's ``[ami]`` cannot disagree. A key written in the TOML
wins over the store on both sides alike.

The file is written whole (a temporary file renamed over it), so a reader never sees half of
it; an unreadable file is reported, never replaced: regenerating would lock every phone out.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from controller.site.config import DEFAULT_SECRETS_FILE

# (config section, key) -> the store's field
CONFIG_KEYS: dict[tuple[str, str], str] = {
    ("http", "api_token"): "api_token",
    ("ami", "username"): "ami_user",
    ("ami", "secret"): "ami_secret",
    ("ari", "username"): "ari_user",
    ("ari", "password"): "ari_password",
}
DEFAULT_USER = "callctl"


class SecretsError(ValueError):
    """The store exists but cannot be used; the message names the file."""


@dataclass(frozen=True)
class SiteSecrets:
    ami_user: str
    ami_secret: str
    ari_user: str
    ari_password: str
    api_token: str
    agent_passwords: dict[str, str] = field(default_factory=dict)

    @classmethod
    def generate(cls) -> SiteSecrets:
        return cls(
            ami_user=DEFAULT_USER, ami_secret=secrets.token_urlsafe(24),
            ari_user=DEFAULT_USER, ari_password=secrets.token_urlsafe(24),
            api_token=secrets.token_urlsafe(32),
        )

    def with_agents(self, agent_ids: Iterable[str]) -> SiteSecrets:
        """These secrets plus a new password for each agent that has none (kept ones stay)."""
        added = {agent: _agent_password() for agent in agent_ids
                 if agent not in self.agent_passwords}
        if not added:
            return self
        return replace(self, agent_passwords=dict(sorted((self.agent_passwords | added).items())))

    def with_new_password(self, agent_id: str) -> SiteSecrets:
        """These secrets with a new password for ``agent_id`` (``agent credentials --reset``)."""
        return replace(self, agent_passwords={**self.agent_passwords,
                                              agent_id: _agent_password()})

    def values(self) -> list[str]:
        """Every secret value (to mask them in printed diffs)."""
        return [self.ami_secret, self.ari_password, self.api_token,
                *self.agent_passwords.values()]


def _agent_password() -> str:
    return secrets.token_urlsafe(12)


def secrets_path(data: dict[str, Any], config_dir: Path) -> Path:
    """The store named by the raw config's ``site.secrets_file``, relative to its folder."""
    site = data.get("site")
    name = site.get("secrets_file") if isinstance(site, dict) else None
    return config_dir / (name if isinstance(name, str) else DEFAULT_SECRETS_FILE)


def read_secrets(path: Path) -> SiteSecrets | None:
    """The store at ``path``, or None when there is none yet."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SecretsError(f"{path}: cannot read the secrets store: {error.strerror}") from None
    try:
        loaded = SiteSecrets(**json.loads(text))
    except (ValueError, TypeError) as error:
        raise SecretsError(
            f"{path}: unreadable secrets store ({error}); fix it, or delete it to generate new"
            " secrets (every phone and the controller then need the new ones)"
        ) from None
    if not all(isinstance(value, str) and value for value in asdict(loaded).values()
               if not isinstance(value, dict)):
        raise SecretsError(f"{path}: a secret in the store is empty or not a string")
    return loaded


def write_secrets(path: Path, stored: SiteSecrets, owner: tuple[int, int] | None = None) -> None:
    """Write the store owner-only (0600), atomically; ``owner`` (uid, gid) hands it to the
    user that runs the controller when the renderer runs as root."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.unlink(missing_ok=True)
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(asdict(stored), file, indent=2)
        file.write("\n")
    if owner is not None:
        os.chown(staging, *owner)
    staging.replace(path)


def missing_keys(data: dict[str, Any]) -> list[str]:
    """The secret keys (``ami.secret``, ...) the raw config leaves to the store."""
    return [f"{section}.{key}" for section, key in CONFIG_KEYS
            if not (isinstance(data.get(section), dict) and key in data[section])]


def fill_config(data: dict[str, Any], stored: SiteSecrets) -> dict[str, Any]:
    """The raw config with every secret key it leaves out taken from the store."""
    filled = dict(data)
    values = asdict(stored)
    for (section, key), name in CONFIG_KEYS.items():
        current = filled.get(section, {})
        if isinstance(current, dict) and key not in current:
            filled[section] = {**current, key: values[name]}
    return filled
