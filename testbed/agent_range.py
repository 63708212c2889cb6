"""A testbed instance whose site declares agents ``first``..``last`` in one
``[[agents.range]]`` and renders without the suite's static agent contact, so the phones
register for real (the agent accounts test and the agents bench use it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w

from controller.site.deploy import render_to
from testbed.asterisk import AsteriskInstance, Ports


class AgentRangeInstance(AsteriskInstance):
    def __init__(self, name: str, state_dir: Path, ports: Ports, *, first: int,
                 last: int) -> None:
        super().__init__(name, state_dir, ports, fresh=True)
        self.first, self.last = first, last

    def site_settings(self) -> dict[str, Any]:
        data = super().site_settings()
        data["agents"] = {**data.get("agents", {}), "range": [
            {"first": self.first, "last": self.last, "name": "Seat {id}", "team": "floor"}]}
        return data

    def render_config(self) -> None:
        self.prepare_directories()
        render_to(self.site_file(), self.config_dir)

    def site_file(self) -> Path:
        """The site's TOML, written once: a test or bench edits it, then renders again."""
        path = self.state_dir / "site.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text(tomli_w.dumps(self.site_settings()))
        return path
