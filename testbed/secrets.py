"""Credentials of one testbed instance: generated on first use, kept in its state directory.

Nothing secret is committed: templates carry placeholders and each instance (the demo one in
``var/``, a test session's one in a temporary directory) gets its own random values, stored in
``secrets.json`` (mode 0600) so restarts and the rendered controller config agree.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

AGENTS = ("1001", "1002", "1003", "1004", "1005")
SECRETS_FILE = "secrets.json"


@dataclass(frozen=True)
class InstanceSecrets:
    ami_user: str
    ami_secret: str
    ari_user: str
    ari_password: str
    api_token: str
    agent_passwords: dict[str, str]

    @classmethod
    def generate(cls) -> InstanceSecrets:
        return cls(
            ami_user="callctl",
            ami_secret=secrets.token_urlsafe(24),
            ari_user="callctl",
            ari_password=secrets.token_urlsafe(24),
            api_token=secrets.token_urlsafe(32),
            agent_passwords={agent: secrets.token_urlsafe(12) for agent in AGENTS},
        )


def load_or_create(state_dir: Path) -> InstanceSecrets:
    """Read ``state_dir/secrets.json``, creating it (owner-only) when absent."""
    path = state_dir / SECRETS_FILE
    if path.exists():
        try:
            return InstanceSecrets(**json.loads(path.read_text()))
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"{path}: unreadable secrets file ({error}); delete it to regenerate"
            ) from None
    state_dir.mkdir(parents=True, exist_ok=True)
    created = InstanceSecrets.generate()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(asdict(created), file, indent=2)
    return created
