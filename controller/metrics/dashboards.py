"""The four Grafana dashboards, defined once in Python and written as provisioned JSON.

Grafana's JSON repeats the same datasource, grid and field boilerplate for every panel; keeping
the panels here as (title, kind, queries, unit) makes the dashboards short to review and every
PromQL expression easy to find. The JSON under ``docker/grafana/dashboards/`` is generated:

    python -m controller.metrics.dashboards docker/grafana/dashboards

and a unit test fails when the committed files differ from what this module produces.

A site of several nodes has a controller per node, each one a target of job ``callctl``, so a
gauge comes once per controller and each panel says how they add up: a node's share (callers
waiting, callbacks it owns, dialer lines, every counter) is summed; what each controller reads
from the store (service level, abandon ratios, leads, the agent statistics) or from its config
(open, targets) is the site's already, the same from each, so the panel takes the largest; so
does a node's view of every member (each node has every logged-in agent, held there while
busy elsewhere) and of its longest and expected waits. With one controller each panel reads
as the gauge itself.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
PanelKind = Literal["stat", "gauge", "timeseries", "bargauge"]
RATE = "$__rate_interval"
# the regulatory abandon limit, drawn as a line on the dialer's abandon panel
ABANDON_LIMIT = 0.03
ABANDON_WARNING = 0.025


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    kind: PanelKind
    targets: tuple[Target, ...]
    unit: str = "short"
    description: str = ""
    width: int = 8
    height: int = 8
    # (value, colour) steps after the base colour; drawn as lines on time series
    thresholds: tuple[tuple[float, str], ...] = ()
    base_colour: str = "green"
    value_text: dict[str, str] = field(default_factory=dict)
    stacked: bool = False


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    panels: tuple[Panel, ...]
    variables: tuple[tuple[str, str], ...] = ()  # (name, label_values source metric)
    refresh: str = "10s"
    time_from: str = "now-3h"


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": panel.base_colour, "value": None}]
    steps += [{"color": colour, "value": value} for value, colour in panel.thresholds]
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "thresholds": {"mode": "absolute", "steps": steps},
        "color": {"mode": "thresholds" if panel.kind != "timeseries" else "palette-classic"},
    }
    if panel.unit == "percentunit":
        defaults |= {"min": 0, "decimals": 1}
    if panel.value_text:
        defaults["mappings"] = [
            {
                "type": "value",
                "options": {
                    value: {"text": text, "index": index}
                    for index, (value, text) in enumerate(panel.value_text.items())
                },
            }
        ]
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "fillOpacity": 30 if panel.stacked else 0,
            "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"},
            "thresholdsStyle": {"mode": "line" if panel.thresholds else "off"},
        }
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "datasource": DATASOURCE,
                "expr": target.expr,
                "legendFormat": target.legend,
            }
            for index, target in enumerate(panel.targets)
        ],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
    }


def _variable_json(name: str, metric: str) -> dict[str, Any]:
    query = f"label_values({metric}, {name})"
    return {
        "name": name,
        "label": name.capitalize(),
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-values"},
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    """Grafana's dashboard model; panels flow left to right in rows of 24 grid units."""
    panels, x, y, row_height = [], 0, 0, 0
    for panel_id, panel in enumerate(dashboard.panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel_json(panel, panel_id, x, y))
        x, row_height = x + panel.width, max(row_height, panel.height)
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "tags": ["callctl"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": dashboard.refresh,
        "time": {"from": dashboard.time_from, "to": "now"},
        "timezone": "browser",
        "templating": {"list": [_variable_json(n, m) for n, m in dashboard.variables]},
        "annotations": {"list": []},
        "panels": panels,
    }


Q = '{queue=~"$queue"}'
C = '{campaign=~"$campaign"}'

INBOUND = Dashboard(
    uid="callctl-inbound",
    title="callctl inbound wallboard",
    variables=(("queue", "callctl_queue_callers"),),
    panels=(
        Panel("Callers waiting", "stat",
              (Target(f"sum by (queue) (callctl_queue_callers{Q})", "{{queue}}"),),
              thresholds=((5, "orange"), (10, "red"))),
        Panel("Oldest wait", "stat",
              (Target(f"max by (queue) (callctl_queue_oldest_wait_seconds{Q})", "{{queue}}"),),
              unit="s", thresholds=((30, "orange"), (60, "red"))),
        Panel("Estimated wait", "stat",
              (Target(f"max by (queue) (callctl_queue_estimated_wait_seconds{Q})", "{{queue}}"),),
              unit="s"),
        Panel("Service level", "gauge",
              (Target(f"max by (queue) (callctl_queue_service_level_ratio{Q})", "{{queue}}"),),
              unit="percentunit", base_colour="red", thresholds=((0.7, "orange"), (0.8, "green")),
              description="Answered within threshold / (answered + abandoned after the "
                          "short-abandon threshold) over the configured window."),
        Panel("Abandon rate (1h)", "stat", (Target(
            f'sum by (queue) (increase(callctl_queue_calls_total{{queue=~"$queue",'
            f'outcome="abandoned"}}[1h])) / clamp_min(sum by (queue) '
            f"(increase(callctl_queue_calls_total{Q}[1h])), 1)",
            "{{queue}}"),), unit="percentunit", thresholds=((0.05, "orange"), (0.1, "red")),
            description="Abandoned / all calls that left the queue in the last hour."),
        Panel("Queue open", "stat",
              (Target(f"max by (queue) (callctl_queue_open{Q})", "{{queue}}"),),
              base_colour="red", thresholds=((1, "green"),),
              value_text={"0": "closed", "1": "open"}),
        Panel("Agents by state", "bargauge",
              (Target(f"sum by (state) (max by (queue, state) (callctl_agents{Q}))",
                      "{{state}}"),),
              description="Queue memberships per state, each once over the nodes: an agent in"
                          " two queues counts twice."),
        Panel("Calls by outcome", "timeseries", (Target(
            f"sum by (outcome) (increase(callctl_queue_calls_total{Q}[{RATE}]))",
            "{{outcome}}"),), stacked=True),
        Panel("Answered wait p90", "timeseries", (Target(
            f'histogram_quantile(0.9, sum by (queue, le) (rate(callctl_queue_wait_seconds_bucket'
            f'{{queue=~"$queue",outcome="answered"}}[{RATE}])))', "{{queue}}"),), unit="s"),
        Panel("Average handle time", "timeseries", (Target(
            f"sum by (queue) (rate(callctl_queue_handle_seconds_sum{Q}[{RATE}])) / "
            f"sum by (queue) (rate(callctl_queue_handle_seconds_count{Q}[{RATE}]))",
            "{{queue}}"),), unit="s", width=12,
            description="Talk + wrap-up seconds per answered call."),
        Panel("Callers waiting over time", "timeseries",
              (Target(f"sum by (queue) (callctl_queue_callers{Q})", "{{queue}}"),), width=12),
        Panel("Callbacks pending", "stat",
              (Target(f"sum by (queue) (callctl_callbacks_pending{Q})", "{{queue}}"),), width=6,
              description="Callbacks booked and not ended: waiting for the schedule, holding "
                          "the caller's place in the queue, dialing or waiting to retry."),
        Panel("Callbacks by outcome", "timeseries", (Target(
            f"sum by (outcome) (increase(callctl_callbacks_total{Q}[{RATE}]))",
            "{{outcome}}"),), stacked=True, width=18,
            description="answered: reached and bridged to an agent; unreached: every attempt "
                        "unanswered or not confirmed with 1 (a voicemail); expired; cancelled."),
        Panel("Dispositions", "timeseries", (Target(
            f"sum by (disposition) (increase(callctl_queue_dispositions_total{Q}[{RATE}]))",
            "{{disposition}}"),), stacked=True, width=24,
            description="What agents said the queue calls came to: the disposition code and a"
                        " key after each call."),
    ),
)

DIALER = Dashboard(
    uid="callctl-dialer",
    title="callctl dialer",
    variables=(("campaign", "callctl_dialer_dial_level"),),
    panels=(
        Panel("Abandon ratio per window", "timeseries",
              (Target(f"max by (campaign, window) (callctl_dialer_abandon_ratio{C})",
                      "{{campaign}} {{window}}"),),
              unit="percentunit", width=12,
              thresholds=((ABANDON_WARNING, "orange"), (ABANDON_LIMIT, "red")),
              description="Abandoned / live-answered calls; the red line is the 3% limit."),
        Panel("Dial level", "timeseries",
              (Target(f"avg by (campaign) (callctl_dialer_dial_level{C})", "{{campaign}}"),),
              width=12, description="Lines per agent, averaged over the dialer workers."),
        Panel("Lines active", "timeseries",
              (Target(f"sum by (campaign) (callctl_dialer_lines_active{C})", "{{campaign}}"),)),
        Panel("Agent occupancy", "gauge",
              (Target(f"avg by (campaign) (callctl_dialer_agent_occupancy_ratio{C})",
                      "{{campaign}}"),),
              unit="percentunit", base_colour="orange",
              thresholds=((0.7, "green"), (0.95, "red")),
              description="Each worker's agents' talk share, averaged over the workers."),
        Panel("Leads by state", "bargauge",
              (Target(f"sum by (state) (max by (campaign, state) (callctl_dialer_leads{C}))",
                      "{{state}}"),)),
        Panel("Answer to agent latency", "timeseries", tuple(
            Target(f"histogram_quantile({q}, sum by (campaign, le) (rate("
                   f"callctl_dialer_answer_to_agent_seconds_bucket{C}[{RATE}])))",
                   f"{{{{campaign}}}} p{q * 100:g}")
            for q in (0.5, 0.95)), unit="s", width=12, thresholds=((2, "red"),),
            description="Customer answer to agent connected; over 2 s counts as abandoned."),
        Panel("Call results", "timeseries", (Target(
            f"sum by (result) (increase(callctl_dialer_calls_total{C}[{RATE}]))",
            "{{result}}"),), width=12, stacked=True),
        Panel("Dispositions", "timeseries", (Target(
            f"sum by (disposition) (increase(callctl_dialer_dispositions_total{C}[{RATE}]))",
            "{{disposition}}"),), width=12, stacked=True,
            description="What agents said the calls came to, by the key they pressed in"
                        " wrap-up."),
    ),
)

HEALTH = Dashboard(
    uid="callctl-health",
    title="callctl controller health",
    panels=(
        Panel("Components", "stat", (Target("callctl_up", "{{instance}} {{component}}"),),
              base_colour="red", thresholds=((1, "green"),),
              value_text={"0": "down", "1": "up"}),
        Panel("Scrape targets", "stat",
              (Target('up{job=~"callctl|asterisk"}', "{{job}} {{instance}}"),),
              base_colour="red", thresholds=((1, "green"),),
              value_text={"0": "down", "1": "up"}),
        Panel("Asterisk channels", "stat", (Target("asterisk_channels_count", "channels"),)),
        Panel("AMI events per second", "timeseries", (Target(
            f"topk(10, sum by (event) (rate(callctl_ami_events_total[{RATE}])))", "{{event}}"),),
            unit="ops", width=12),
        Panel("Event processing time", "timeseries", tuple(
            Target(f"histogram_quantile({q}, sum by (le) "
                   f"(rate(callctl_event_processing_seconds_bucket[{RATE}])))", f"p{q * 100:g}")
            for q in (0.5, 0.99)), unit="s", width=12),
        Panel("Recordings", "timeseries", (Target(
            f"sum by (result) (increase(callctl_recordings_total[{RATE}]))", "{{result}}"),)),
        Panel("Recording bytes per second", "timeseries",
              (Target(f"rate(callctl_recording_bytes_total[{RATE}])", "bytes/s"),), unit="Bps"),
        Panel("Controller memory", "timeseries",
              (Target('process_resident_memory_bytes{job="callctl"}', "{{instance}}"),),
              unit="bytes"),
        Panel("Controller CPU", "timeseries", (Target(
            f'rate(process_cpu_seconds_total{{job="callctl"}}[{RATE}])', "{{instance}}"),)),
        Panel("Scrape duration", "timeseries",
              (Target('scrape_duration_seconds{job=~"callctl|asterisk"}', "{{job}} {{instance}}"),),
              unit="s"),
    ),
)

A = '{agent=~"$agent"}'

AGENTS = Dashboard(
    uid="callctl-agents",
    title="callctl agents",
    variables=(("agent", "callctl_agent_calls_handled"),),
    panels=(
        Panel("Calls handled", "bargauge",
              (Target(f"max by (agent) (callctl_agent_calls_handled{A})", "{{agent}}"),),
              description="Inbound calls answered over the metrics window."),
        Panel("Average handle time", "bargauge", (Target(
            f'sum by (agent) (max by (agent, activity) (callctl_agent_seconds'
            f'{{agent=~"$agent",activity=~"talking|wrapup"}}))'
            f" / clamp_min(max by (agent) (callctl_agent_calls_handled{A}), 1)", "{{agent}}"),),
            unit="s", description="(talk + wrap-up) seconds per handled call."),
        Panel("Occupancy", "bargauge",
              (Target(f"max by (agent) (callctl_agent_occupancy_ratio{A})", "{{agent}}"),),
              unit="percentunit", base_colour="orange",
              thresholds=((0.7, "green"), (0.95, "red")),
              description="(talking + wrap-up) / (logged in - paused) over the window."),
        Panel("Time by activity", "bargauge", (Target(
            f"sum by (activity) (max by (agent, activity) (callctl_agent_seconds{A}))",
            "{{activity}}"),), unit="s",
            width=12),
        Panel("Paused by reason", "bargauge", (Target(
            f"sum by (reason) (max by (agent, reason) (callctl_agent_paused_seconds{A}))",
            "{{reason}}"),), unit="s",
            width=12, description="missed: the auto-pause after unanswered rings."),
        Panel("Logged in per agent", "timeseries", (Target(
            'max by (agent) (callctl_agent_seconds{agent=~"$agent",activity="logged_in"})',
            "{{agent}}"),),
            unit="s", width=24),
    ),
)

DASHBOARDS = (INBOUND, DIALER, HEALTH, AGENTS)


def render_dashboards() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {
        f"{d.uid.removeprefix('callctl-')}.json": json.dumps(dashboard_json(d), indent=2) + "\n"
        for d in DASHBOARDS
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m controller.metrics.dashboards OUTPUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    for name, text in render_dashboards().items():
        (out / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
