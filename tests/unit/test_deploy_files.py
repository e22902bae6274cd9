"""The Grafana dashboard and the alert rules load, and ask only for metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from app import create_app, metrics, procstats
from app.config import Settings

ROOT = Path(__file__).resolve().parents[2]
METRIC = re.compile(r"\b((?:proxy|flask)_[a-z0-9_]+)\b")
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}


def families() -> dict[str, str]:
    """Every metric the proxy exports (name -> type): ours and the request exporter's."""
    assert procstats.WORKER_MEMORY  # imported by gunicorn's workers only: register it here
    app = create_app(Settings(backend_url="http://backend.test/v1"))
    exporter = app.extensions[metrics.EXTENSION].registry
    found = {}
    for registry in (REGISTRY, exporter):
        for family in registry.collect():
            if family.name.startswith(("proxy_", "flask_")):
                found[family.name] = family.type
    return found


def series_names() -> set[str]:
    return {
        name + suffix for name, kind in families().items() for suffix in SUFFIXES.get(kind, ("",))
    }


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((ROOT / "deploy/grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((ROOT / "deploy/prometheus-alerts.yaml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_expression_names_an_exported_metric(source: str) -> None:
    exprs = dashboard_exprs() if source == "dashboard" else [r["expr"] for r in alert_rules()]
    assert exprs
    known = series_names()
    for expr in exprs:
        used = METRIC.findall(expr)
        assert used, expr
        assert set(used) <= known, (expr, set(used) - known)


def test_the_dashboard_covers_what_operators_asked_for() -> None:
    text = " ".join(dashboard_exprs())
    for needed in (
        "flask_http_request_duration_seconds_count",  # throughput and error rate
        "proxy_time_to_first_token_seconds_bucket",
        "proxy_completion_tokens_total",
        "proxy_streams_in_flight",
        "proxy_breaker_state",
    ):
        assert needed in text


def test_alert_rules_are_complete() -> None:
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        assert {"alert", "expr", "for", "labels", "annotations"} <= set(rule), rule
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


def test_the_readme_lists_every_metric() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in families() if f"`{name}" not in readme]
    assert not missing
