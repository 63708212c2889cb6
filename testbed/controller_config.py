"""The controller's TOML for a testbed instance, rendered from ``controller.example.toml``.

The example file in the repository is the one source of the controller's demo settings; here
it only gets the instance's ports and generated credentials, so `make run` and the
integration tests start the controller exactly as a user would, from a validated file.
"""

from __future__ import annotations

from pathlib import Path

from controller.config import Config, load_config
from testbed.asterisk import REPO_DIR, AsteriskInstance
from testbed.render import render

EXAMPLE_CONFIG = REPO_DIR / "controller.example.toml"


def _toml_string(value: str) -> str:
    """Escape for a TOML basic string (the template supplies the quotes)."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def write_controller_config(
    instance: AsteriskInstance, target: Path, *, http_port: int, store_path: Path
) -> Config:
    """Render the controller config for ``instance`` to ``target``; return it validated."""
    secret = instance.secrets
    values = {
        "HTTP_PORT": str(http_port), "API_TOKEN": secret.api_token,
        "AMI_PORT": str(instance.ports.ami), "AMI_USER": secret.ami_user,
        "AMI_SECRET": secret.ami_secret, "ARI_URL": instance.ari_url,
        "ARI_USER": secret.ari_user, "ARI_PASSWORD": secret.ari_password,
        "ARI_APP": instance.ari_app, "STORE_URL": f"sqlite:///{store_path.resolve()}",
    }
    text = render(EXAMPLE_CONFIG.read_text(), {k: _toml_string(v) for k, v in values.items()},
                  str(EXAMPLE_CONFIG))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(0o600)
    return load_config(target)
