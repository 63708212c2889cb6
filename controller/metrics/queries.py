"""Every PromQL expression of the Grafana dashboards and the Prometheus rules, as data.

The integration test evaluates each against a real Prometheus scraping a real controller, so
a renamed metric or a typo in a panel fails a test instead of showing an empty graph. Grafana
variables are replaced by values Prometheus accepts (``$queue`` -> ``.*``, ``$__rate_interval``
-> a range). An alert expression returns series only while it fires, so each alert is listed
twice: the whole expression (must evaluate) and its measure, the left side of the
``<measure> <op> <number>`` form that ``docker/prometheus/alerts.yml`` keeps to (must return
series). Needs PyYAML (a test dependency): import this module from tests and tools only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DASHBOARD_DIR = Path("docker/grafana/dashboards")
RULE_FILES = (Path("docker/prometheus/alerts.yml"),)

_GRAFANA_RANGES = ("$__rate_interval", "$__interval", "$__range")
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
_THRESHOLD = re.compile(r"^(?P<measure>.*\S)\s+(==|!=|>=|<=|>|<)\s+-?[0-9.]+$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class PromQuery:
    """One expression; ``where`` names its file and panel or rule."""

    where: str
    expr: str
    expect_series: bool


def substitute_grafana_variables(expr: str, rate_range: str = "1m") -> str:
    """Make a panel expression plain PromQL: ranges -> ``rate_range``, variables -> ``.*``."""
    for name in _GRAFANA_RANGES:
        expr = expr.replace(name, rate_range)
    return _VARIABLE.sub(".*", expr)


def alert_measure(expr: str) -> str:
    """The measured quantity of ``<measure> <op> <number>``; ValueError for another shape."""
    match = _THRESHOLD.match(expr.strip())
    if match is None:
        raise ValueError(f"alert expression is not '<measure> <op> <number>': {expr!r}")
    return match["measure"]


def _panel_targets(root: Path) -> Iterator[tuple[Path, dict[str, Any], dict[str, Any]]]:
    """Every dashboard's file, panel and target, in file and panel order."""
    for path in sorted((root / DASHBOARD_DIR).glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                yield path, panel, target


def dashboard_queries(root: Path, rate_range: str = "1m") -> Iterator[PromQuery]:
    for path, panel, target in _panel_targets(root):
        yield PromQuery(
            where=f"{path.relative_to(root)}: panel {panel['title']!r} target {target['refId']}",
            expr=substitute_grafana_variables(target["expr"], rate_range),
            expect_series=True,
        )


def panel_exprs(root: Path, rate_range: str = "1m") -> dict[tuple[str, str], str]:
    """Each panel's first expression, plain PromQL, by (dashboard file stem, panel title)."""
    exprs: dict[tuple[str, str], str] = {}
    for path, panel, target in _panel_targets(root):
        exprs.setdefault((path.stem, panel["title"]),
                         substitute_grafana_variables(target["expr"], rate_range))
    return exprs


def rule_queries(root: Path) -> Iterator[PromQuery]:
    for rel in RULE_FILES:
        for group in yaml.safe_load((root / rel).read_text())["groups"]:
            for rule in group["rules"]:
                expr = " ".join(rule["expr"].split())
                if "record" in rule:
                    yield PromQuery(f"{rel}: record {rule['record']}", expr, True)
                else:
                    where = f"{rel}: alert {rule['alert']}"
                    yield PromQuery(where, expr, False)
                    yield PromQuery(f"{where} (measure)", alert_measure(expr), True)


def all_queries(root: Path, rate_range: str = "1m") -> list[PromQuery]:
    """Dashboards then rules, relative to the repository ``root``."""
    return [*dashboard_queries(root, rate_range), *rule_queries(root)]
