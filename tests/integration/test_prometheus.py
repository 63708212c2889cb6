"""Issue 6 on the real stack: a real Prometheus scrapes the in-process controller and Asterisk
while sipp callers ring DID 5000, and every dashboard and alert expression is evaluated.

One scenario, checked from several sides: nobody is logged in while the first callers wait and
hang up (abandoned), then two agents log in through the API and the next callers are answered
by the agents' sipp phones and recorded. The outcome counters Prometheus scraped must equal the
store's outcome rows and what the sipp callers saw (a BYE from Asterisk means an agent talked
and hung up; a caller who hung up itself abandoned). A created (not started) campaign with
leads gives the dialer gauges their series.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from controller.app import Controller
from controller.config import Config
from controller.dialer.leads import parse_leads
from controller.dialer.repository import DialerRepository
from controller.dialer.settings import parse_campaign_settings
from controller.metrics.queries import all_queries
from controller.store import open_store
from testbed import prometheus
from testbed.asterisk import REPO_DIR, AsteriskInstance
from testbed.sipp import Sipp, SippPool

from .harness import Api, running_controller, wait_for, with_sections

pytestmark = [
    pytest.mark.timeout(150),
    pytest.mark.skipif(
        shutil.which("prometheus") is None or shutil.which("promtool") is None,
        reason="prometheus and promtool are needed (Debian: apt install prometheus)",
    ),
]

ABANDONING_CALLERS = 2
ANSWERED_CALLERS = 2
AGENTS = ("1001", "1002")
CAMPAIGN = "metrics-spring"

Query = Callable[[str], Awaitable[list[dict[str, Any]]]]


def recording_sections(asterisk: AsteriskInstance) -> str:
    """Record every call into the instance's monitor directory (host and chroot views)."""
    inside = asterisk.spool_dir / "monitor" / "callctl-metrics"
    return (
        f'[recording]\nroot = "{asterisk.host_path(inside)}"\nasterisk_root = "{inside}"\n'
        'min_free_bytes = 0\n[recording.default]\nrecord = "all"\n'
    )


async def create_campaign(config: Config) -> None:
    """A campaign in state ``created`` with three leads: the dialer loads it, never dials."""
    store = await open_store(config.store.url)
    try:
        repo = DialerRepository(store)
        settings = parse_campaign_settings(
            {"trunk": "trunk", "caller_id": "+12025550100", "agents": {"agent_ids": ["1005"]},
             "dispositions": {"1": {"name": "sale"}}}
        )
        now = datetime.now(UTC)
        await repo.create_campaign(CAMPAIGN, settings, now)
        parsed = parse_leads(b"phone,name\n+12025550101,A\n+12025550102,B\n+12025550103,C\n",
                             "US")
        await repo.import_leads(CAMPAIGN, parsed.leads, now)
    finally:
        await store.close()


def series_value(series: list[dict[str, Any]]) -> float:
    [only] = series
    return float(only["value"][1])


async def test_prometheus_sees_live_calls_and_every_dashboard_and_alert_query_works(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: SippPool, tmp_path: Path
) -> None:
    config = with_sections(controller_config_file, recording_sections(asterisk),
                           tmp_path / "controller-recording.toml")
    await create_campaign(config)
    phones = sipp.agent_phones(RING_S="1", TALK_MS="3000")
    api = Api(config)
    async with running_controller(config) as running:
        controller = running.controller
        server = await asyncio.to_thread(
            prometheus.start,
            {"callctl": [f"127.0.0.1:{config.http.port}"],
             "asterisk": [f"127.0.0.1:{asterisk.ports.http}"]},
            tmp_path / "prometheus",
        )

        async def query(expr: str) -> list[dict[str, Any]]:
            return await asyncio.to_thread(server.query, expr)

        try:
            await wait_for(lambda: asyncio.to_thread(
                lambda: server.targets_up() == {"callctl": True, "asterisk": True}),
                30, "Prometheus to scrape the controller and Asterisk")

            # nobody logged in: the callers wait and hang up after 3 s (abandoned)
            abandoning = sipp.call("5000", calls=ABANDONING_CALLERS, HOLD_MS="3000")
            await asyncio.to_thread(abandoning.wait, 40)
            for agent in AGENTS:
                status, body = await api.request("POST", f"/api/v1/agents/{agent}/login", {})
                assert status == 200, body
            await wait_for(
                lambda: all(f"PJSIP/{a}" in controller.model.queues["support"].members
                            for a in AGENTS),
                15, "the agents to be members of support",
            )
            # agents answer after 1 s ring, talk 3 s and hang up: Asterisk sends the caller BYE
            answered = sipp.call("5000", calls=ANSWERED_CALLERS, HOLD_MS="30000")
            await asyncio.to_thread(answered.wait, 60)

            total = ABANDONING_CALLERS + ANSWERED_CALLERS
            outcomes = await wait_for(lambda: _settled(controller, total), 20,
                                      "every call and recording to be finished and stored")
            settled_at = time.time()
            await wait_for(lambda: _scraped_since(query, settled_at), 20,
                           "a Prometheus scrape of the controller after the last call")
            scraped = {
                s["metric"]["outcome"]: int(float(s["value"][1]))
                for s in await query('callctl_queue_calls_total{queue="support"}')
            }
            sipp_saw = _sipp_outcomes(abandoning, answered)
            assert sipp_saw == {"abandoned": ABANDONING_CALLERS, "answered": ANSWERED_CALLERS}
            assert outcomes == sipp_saw
            assert {k: v for k, v in scraped.items() if v} == sipp_saw
            assert phones.received_requests().count("INVITE") >= ANSWERED_CALLERS

            await _check_live_wiring(query, controller)
            await _check_exposition_with_promtool(api)
            await _check_every_query(query, server)
        finally:
            for agent in AGENTS:
                await api.request("POST", f"/api/v1/agents/{agent}/logout", {})
            await asyncio.to_thread(server.stop)


async def _settled(controller: Controller, total: int) -> dict[str, int] | None:
    """The store's outcome count per outcome once no call, channel or recording is live."""
    if controller.router.calls or controller.model.channels:
        return None
    store = controller.store
    if await store.fetchall("SELECT call_id FROM recordings WHERE status = 'recording'", {}):
        return None
    rows = await store.fetchall(
        "SELECT outcome FROM inbound_calls WHERE queue = 'support' AND outcome IS NOT NULL", {}
    )
    return dict(Counter(row["outcome"] for row in rows)) if len(rows) == total else None


async def _scraped_since(query: Query, moment: float) -> bool:
    """Prometheus holds a sample of the controller scraped after ``moment`` (epoch seconds)."""
    series = await query('timestamp(callctl_up{component="ami"})')
    return bool(series) and series_value(series) > moment


def _sipp_outcomes(abandoning: Sipp, answered: Sipp) -> dict[str, int]:
    """Per caller: a BYE received means the agent ended a talk; otherwise the caller gave up."""
    outcomes: Counter[str] = Counter()
    for run in (abandoning, answered):
        stats = run.stats()
        assert stats.failed == 0, run.output()
        byes = run.received_requests().count("BYE")
        outcomes["answered"] += byes
        outcomes["abandoned"] += stats.successful - byes
    return {k: v for k, v in outcomes.items() if v}


async def _check_live_wiring(query: Query, controller: Controller) -> None:
    """Every metric family of the contract is fed by the live services, not only declared."""
    store = controller.store
    ups = {s["metric"]["component"]: float(s["value"][1]) for s in await query("callctl_up")}
    assert ups == {"ami": 1.0, "ari": 1.0, "store": 1.0}
    assert series_value(await query('callctl_queue_open{queue="support"}')) == 1.0
    members = await query('callctl_agents{queue="support"}')
    # logged in, in whatever state now
    now = controller.model.now()
    states = {m.interface: (m.state(now), m.status)
              for m in controller.model.queues["support"].members.values()}
    assert sum(float(s["value"][1]) for s in members) == len(AGENTS), (members, states)
    handled = await query('callctl_queue_handle_seconds_count{queue="support"}')
    assert series_value(handled) == ANSWERED_CALLERS
    waits = await query('callctl_queue_wait_seconds_count{queue="support",outcome="answered"}')
    assert series_value(waits) == ANSWERED_CALLERS
    events = {
        s["metric"]["event"]: float(s["value"][1])
        for s in await query("callctl_ami_events_total")
    }
    assert events.get("QueueCallerJoin") == ABANDONING_CALLERS + ANSWERED_CALLERS
    assert events.get("AgentConnect", 0) >= ANSWERED_CALLERS
    assert series_value(await query("callctl_event_processing_seconds_count")) >= sum(
        events.values()
    )
    # every call is recorded from the queue on (abandoned ones too, a few bytes)
    rows = await store.fetchall(
        "SELECT size_bytes FROM recordings WHERE status = 'complete'", {}
    )
    assert len(rows) >= ANSWERED_CALLERS
    saved = await query('callctl_recordings_total{result="saved"}')
    assert series_value(saved) == len(rows)
    assert series_value(await query('callctl_recordings_total{result="failed"}')) == 0
    assert series_value(await query("callctl_recording_bytes_total")) == sum(
        int(r["size_bytes"]) for r in rows
    )
    leads = {s["metric"]["state"]: float(s["value"][1])
             for s in await query(f'callctl_dialer_leads{{campaign="{CAMPAIGN}"}}')}
    assert sum(leads.values()) == 3
    assert series_value(await query(f'callctl_dialer_lines_active{{campaign="{CAMPAIGN}"}}')) == 0
    assert await query("asterisk_channels_count")


async def _check_exposition_with_promtool(api: Api) -> None:
    """``promtool check metrics`` accepts the real /metrics text served after live calls."""
    status, body = await api.request("GET", "/metrics", token=None)
    assert status == 200
    assert b'callctl_queue_calls_total{outcome="answered",queue="support"}' in body
    process = await asyncio.create_subprocess_exec(
        "promtool", "check", "metrics", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(body), timeout=30)
    assert process.returncode == 0, output.decode()


async def _check_every_query(query: Query, server: prometheus.PrometheusServer) -> None:
    """Each dashboard and alert expression evaluates; those that must, return series."""
    problems = []
    for item in all_queries(REPO_DIR):
        try:
            series = await query(item.expr)
        except prometheus.PrometheusError as error:
            problems.append(f"{item.where}: {error}")
            continue
        if item.expect_series and not series:
            problems.append(f"{item.where}: no series for {item.expr}")
    assert not problems, "\n".join(problems)
    unhealthy = [r for r in await asyncio.to_thread(server.rules) if r["health"] != "ok"]
    assert not unhealthy, unhealthy
