"""Agent accounts on the real Asterisk: rendering and reloading 40 and 500 agents.

An instance on the slot's second ports declares agents in one ``[[agents.range]]``; for each
size the site is rendered (``render_to``: pjsip.conf and callctl-agents.conf, this process),
then Asterisk reloads PJSIP and the dialplan (``module reload res_pjsip.so``, ``dialplan
reload`` over its control socket, one ``asterisk -rx`` process each: included in the time).
"Loaded" is when ``pjsip show endpoints`` lists every agent. Target: under 1 s for 500 agents
on the Asterisk side (the reload column). The first size boots the instance; later sizes are
re-renders of the running one, as a site adding seats would do.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
import time
import tomllib
from pathlib import Path

import tomli_w

from bench.common import Table
from controller.site.deploy import render_to
from testbed.agent_range import AgentRangeInstance
from testbed.asterisk import demo_test_ports, ensure_root, test_slot

FIRST = 2001
SIZES = (40, 500)
RELOADS = ("module reload res_pjsip.so", "dialplan reload")


def _endpoint_count(instance: AgentRangeInstance) -> int:
    listing = instance.cli("pjsip show endpoints", timeout=30)
    return len(re.findall(r"^ Endpoint:  2\d{3}\b", listing, flags=re.MULTILINE))


def run() -> Table:
    ensure_root()
    slot = test_slot()
    ports = dataclasses.replace(demo_test_ports(slot), agent_phone=None)
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as state:
        instance = AgentRangeInstance(f"bench-agents{slot or ''}", Path(state), ports,
                                      first=FIRST, last=FIRST + SIZES[0] - 1)
        instance.start()
        try:
            for size in SIZES:
                site_file = instance.site_file()
                data = tomllib.loads(site_file.read_text())
                data["agents"]["range"][0]["last"] = FIRST + size - 1
                site_file.write_text(tomli_w.dumps(data))
                started = time.perf_counter()
                render_to(site_file, instance.config_dir)
                rendered = time.perf_counter()
                for command in RELOADS:
                    instance.cli(command, timeout=30)
                reloaded = time.perf_counter()
                deadline = time.monotonic() + 30
                while _endpoint_count(instance) < size:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{size} agents not loaded after 30 s")
                    time.sleep(0.01)
                loaded = time.perf_counter()
                rows.append([size, rendered - started, reloaded - rendered, loaded - rendered])
        finally:
            instance.stop()
    return Table("agent accounts: render and reload", ["agents", "render_s", "reload_s",
                                                       "all_loaded_s"], rows,
                 notes=["reload_s: both reload commands (Asterisk side); target < 1 s at 500"])
