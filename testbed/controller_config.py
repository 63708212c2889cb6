"""The controller's TOML for a testbed instance: the instance's site config plus its API port
and store.

``controller.example.toml`` is the one source of the demo's settings; the instance changes only
its ports and folders (``AsteriskInstance.site_settings``), so `make run` and the integration
tests start the controller exactly as a site would, from a validated file whose secrets live
in the same store the instance's Asterisk is rendered from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import tomli_w

from controller.config import Config
from controller.site.deploy import load_site, save_secrets
from testbed.asterisk import AsteriskInstance


def write_controller_config(
    instance: AsteriskInstance, target: Path, *, http_port: int, store_path: Path,
    store_url: str | None = None, worker_id: str | None = None,
    dialer_agents: Sequence[str] = (),
) -> Config:
    """Write the controller config for ``instance`` to ``target`` (generating the instance's
    secrets if it has none yet); return it validated. ``store_url`` (a PostgreSQL store
    shared by a cluster's controllers) replaces the SQLite file at ``store_path``;
    ``worker_id`` names this controller's dialer among the cluster's, ``dialer_agents`` the
    agents it seats in campaigns."""
    data = instance.site_settings()
    data["http"] = {**data["http"], "port": http_port}
    data["store"] = {"url": store_url or f"sqlite:///{store_path.resolve()}"}
    if worker_id is not None:
        data["dialer"] = {**data.get("dialer", {}), "worker_id": worker_id}
    if dialer_agents:
        data["dialer"] = {**data.get("dialer", {}), "agents": list(dialer_agents)}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(tomli_w.dumps(data))
    site = load_site(target)
    save_secrets(site)
    return site.config
