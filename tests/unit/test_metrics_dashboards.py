"""Grafana dashboards are generated, current, and only query metrics that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from controller.metrics import ComponentUp, DialerGauges, Metrics, QueueGauges, SnapshotProviders
from controller.metrics.dashboards import render_dashboards
from controller.metrics.queries import (
    DASHBOARD_DIR,
    alert_measure,
    all_queries,
    dashboard_queries,
    panel_exprs,
    substitute_grafana_variables,
)
from controller.metrics.snapshot import AgentGauges

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "docker" / "grafana"
# names our own registry exposes; other names (up, asterisk_*) are not checked here
OWN_METRIC_NAME = re.compile(r"\b(callctl_[a-z_]+|callctl:[a-z_:]+|process_[a-z_]+)")


def test_committed_dashboards_match_the_generator() -> None:
    rendered = render_dashboards()
    committed = {p.name: p.read_text() for p in (ROOT / DASHBOARD_DIR).glob("*.json")}
    assert committed == rendered, (
        "run: python -m controller.metrics.dashboards docker/grafana/dashboards"
    )


def test_four_dashboards_with_unique_uids_and_panel_ids() -> None:
    dashboards = [json.loads(text) for text in render_dashboards().values()]
    assert {d["uid"] for d in dashboards} == {"callctl-inbound", "callctl-dialer", "callctl-health",
                                              "callctl-agents"}
    for dashboard in dashboards:
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), dashboard["uid"]
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, panel["title"]


async def test_expressions_name_only_metrics_the_controller_exposes() -> None:
    queue = QueueGauges("sales", True, 0, 0.0, 0.0, 1.0, 0.8)
    campaign = DialerGauges("spring", 0, 1.0, 0.0, leads_by_state={"new": 1})
    metrics = Metrics(SnapshotProviders(
        components=lambda: ComponentUp(ami=True, ari=True, store=True),
        queues=lambda: [queue], dialers=lambda: [campaign],
        agents=lambda: [AgentGauges("1001", 0, {}, {"lunch": 0.0}, 0.5)],
    ), queues=["sales"], campaigns=["spring"])
    metrics.ami_event("FullyBooted")  # a family without pre-initialised series
    # declared from the config and the campaign's settings
    metrics.declare_queue_dispositions("sales", ["sold"])
    metrics.declare_campaign("spring", ["sale"])
    metrics.declare_task("dialer")  # the supervisor declares each of its tasks
    text = (await metrics.render()).decode()
    exposed = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    rules = yaml.safe_load((ROOT / "docker/prometheus/alerts.yml").read_text())["groups"]
    recorded = {rule["record"] for group in rules for rule in group["rules"] if "record" in rule}
    for query in all_queries(ROOT):
        for name in OWN_METRIC_NAME.findall(query.expr):
            assert name in exposed | recorded, f"{query.where}: unknown {name}"


def test_dashboard_variables_are_replaced_for_plain_promql() -> None:
    expr = 'rate(x{queue=~"$queue",c=~"${campaign}"}[$__rate_interval])'
    assert substitute_grafana_variables(expr, "30s") == 'rate(x{queue=~".*",c=~".*"}[30s])'
    for query in dashboard_queries(ROOT):
        assert "$" not in query.expr, query.where


def test_alert_measure_is_the_left_side_of_the_threshold() -> None:
    assert alert_measure("increase(x[15m]) > 0") == "increase(x[15m])"
    assert alert_measure('up{job="callctl"} == 0') == 'up{job="callctl"}'
    with pytest.raises(ValueError, match="measure"):
        alert_measure("a > on (q) b")


def test_every_rule_and_panel_is_listed() -> None:
    queries = all_queries(ROOT)
    rules = yaml.safe_load((ROOT / "docker/prometheus/alerts.yml").read_text())["groups"]
    rule_count = sum(len(group["rules"]) for group in rules)
    alert_count = sum(1 for group in rules for rule in group["rules"] if "alert" in rule)
    panel_targets = sum(
        len(panel["targets"])
        for text in render_dashboards().values()
        for panel in json.loads(text)["panels"]
    )
    assert len(queries) == panel_targets + rule_count + alert_count
    assert sum(not q.expect_series for q in queries) == alert_count


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_every_expression_is_valid_promql(tmp_path: Path) -> None:
    # promtool has no offline "check query": wrap each expression in a recording rule
    rules = [
        {"record": f"check:expr_{index}", "expr": query.expr}
        for index, query in enumerate(all_queries(ROOT))
    ]
    rule_file = tmp_path / "exprs.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "exprs", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(rule_file)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# A site of two nodes, as its two controllers report it (instance: the controller), and what
# each panel must show for the site: a node's share summed, the site's figure (the same from
# both) or a node's view of every member once. (dashboard, panel) -> (series by instance, the
# samples the panel shows).
NODES = ("127.0.0.1:8080", "127.0.0.1:8081")
SITE_PANELS: dict[tuple[str, str], tuple[dict[str, tuple[float, float]], dict[str, float]]] = {
    ("inbound", "Callers waiting"): (
        {'callctl_queue_callers{queue="support"}': (1, 2)}, {'{queue="support"}': 3}),
    ("inbound", "Oldest wait"): (
        {'callctl_queue_oldest_wait_seconds{queue="support"}': (30, 50)},
        {'{queue="support"}': 50}),
    ("inbound", "Service level"): (
        {'callctl_queue_service_level_ratio{queue="support"}': (0.8, 0.8)},
        {'{queue="support"}': 0.8}),
    ("inbound", "Queue open"): (
        {'callctl_queue_open{queue="support"}': (1, 1)}, {'{queue="support"}': 1}),
    ("inbound", "Agents by state"): (
        {'callctl_agents{queue="support",state="available"}': (2, 2),
         'callctl_agents{queue="support",state="on_call"}': (1, 1),
         'callctl_agents{queue="sales",state="available"}': (1, 1)},
        {'{state="available"}': 3, '{state="on_call"}': 1}),
    ("inbound", "Callbacks pending"): (
        {'callctl_callbacks_pending{queue="support"}': (1, 0)}, {'{queue="support"}': 1}),
    ("dialer", "Abandon ratio per window"): (
        {'callctl_dialer_abandon_ratio{campaign="spring",window="24h"}': (0.01, 0.01)},
        {'{campaign="spring",window="24h"}': 0.01}),
    ("dialer", "Lines active"): (
        {'callctl_dialer_lines_active{campaign="spring"}': (3, 2)}, {'{campaign="spring"}': 5}),
    ("dialer", "Leads by state"): (
        {'callctl_dialer_leads{campaign="spring",state="new"}': (10, 10)},
        {'{state="new"}': 10}),
    ("agents", "Calls handled"): (
        {'callctl_agent_calls_handled{agent="1001"}': (4, 4)}, {'{agent="1001"}': 4}),
    ("agents", "Time by activity"): (
        {'callctl_agent_seconds{agent="1001",activity="talking"}': (100, 100),
         'callctl_agent_seconds{agent="1002",activity="talking"}': (50, 50)},
        {'{activity="talking"}': 150}),
}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_panels_show_a_site_of_two_controllers_once(tmp_path: Path) -> None:
    exprs = panel_exprs(ROOT)
    tests = []
    for key, (series, shown) in SITE_PANELS.items():
        tests.append({
            "interval": "1m",
            "input_series": [
                {"series": name[:-1] + f',instance="{node}",job="callctl"}}',
                 "values": f"{value}x3"}
                for name, values in series.items()
                for node, value in zip(NODES, values, strict=True)],
            "promql_expr_test": [{
                "expr": exprs[key], "eval_time": "1m",
                "exp_samples": [{"labels": labels, "value": value}
                                for labels, value in shown.items()]}],
        })
    test_file = tmp_path / "site_test.yml"
    test_file.write_text(yaml.safe_dump(
        {"rule_files": [], "evaluation_interval": "1m", "tests": tests}))
    result = subprocess.run(
        ["promtool", "test", "rules", str(test_file)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_provisioning_points_grafana_at_the_dashboards_and_prometheus() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    source = datasources["datasources"][0]
    assert (source["type"], source["uid"]) == ("prometheus", "prometheus")
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/callctl.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
