"""docs/grafana-couponsvc.json: a dashboard Grafana imports, built on metrics the app exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .scrape import exported_names

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-couponsvc.json"
METRIC = re.compile(r"\bcouponsvc_[a-z0-9_]+")


def load() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def graphs(dashboard: dict) -> list[dict]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def test_it_is_a_dashboard_grafana_imports():
    dashboard = load()
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert dashboard["title"] and re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"])
    assert dashboard["id"] is None  # Grafana gives its own on import
    [variable] = dashboard["templating"]["list"]
    assert (variable["type"], variable["query"], variable["name"]) == ("datasource", "prometheus", "datasource")
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        mine = {(grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
    for panel in graphs(dashboard):
        assert panel["type"] in {"timeseries", "stat"} and panel["title"], panel
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            assert target["refId"] and METRIC.search(expr), (panel["title"], expr)
            assert expr.count("(") == expr.count(")") and expr.count("[") == expr.count("]"), expr
            assert expr.count("{") == expr.count("}"), expr


def test_it_shows_what_an_operator_looks_at():
    exprs = " ".join(target["expr"] for panel in graphs(load()) for target in panel["targets"])
    for wanted in ("rate(couponsvc_redemptions_total", "histogram_quantile(0.99, sum by (le) "
                   "(rate(couponsvc_redeem_seconds_bucket", "couponsvc_orders_total",
                   "by (adapter, status) (rate(couponsvc_deliveries_total",
                   "max(couponsvc_delivery_lag_seconds)", "max(couponsvc_outbox_unpositioned)",
                   "couponsvc_jobs_total", "couponsvc_queue_jobs"):
        assert wanted in exprs, wanted


def test_every_metric_it_names_is_exported_by_the_app(client):
    response = client.http.get("/metrics")
    assert response.status_code == 200
    exported = exported_names(response.get_data(as_text=True))
    named = {name for panel in graphs(load()) for target in panel["targets"]
             for name in METRIC.findall(target["expr"])}
    assert named and not named - exported, sorted(named - exported)
