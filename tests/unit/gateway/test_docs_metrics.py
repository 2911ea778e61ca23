"""docs/operations.md lists exactly the metrics the gateway exports, and the dashboard uses real ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gateway.app  # noqa: F401  (registers every collector, auth's included)
from gateway import metrics

DOCS = Path(__file__).resolve().parents[3] / "docs"


def exported() -> set[str]:
    names = set()
    for collector in metrics.REGISTRY._collector_to_names:  # every registered collector
        for family in collector.describe() or collector.collect():
            names.add(family.name)
    return names


def documented() -> set[str]:
    text = (DOCS / "operations.md").read_text()
    table_rows = [line for line in text.splitlines() if line.startswith("| `")]
    names = set()
    for row in table_rows:
        first_cell = row.split("|")[1]
        for name in re.findall(r"`((?:gen_ai|gateway)_[a-z_]+)`", first_cell):
            names.add(name.removesuffix("_total"))
        # `gateway_tracking_written_total`, `_spilled_total`, ... shorthand in one cell
        for suffix in re.findall(r"`(_[a-z_]+)`", first_cell):
            names.add("gateway_tracking" + suffix.removesuffix("_total"))
    return names


def test_every_exported_metric_is_documented_and_nothing_else():
    assert documented() == exported()


def test_dashboard_queries_only_real_metrics():
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b((?:gen_ai|gateway)_[a-z_]+)", re.sub(r"by \([^)]*\)", "", target["expr"]))
    }
    known = exported()
    suffixes = ("_bucket", "_sum", "_count", "_total")
    for name in used:
        base = next((name.removesuffix(s) for s in suffixes if name.endswith(s)), name)
        assert base in known, name
