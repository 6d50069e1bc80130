"""The Grafana dashboard and the Prometheus scrape configuration, checked offline:
every panel's PromQL parses and names only metrics the services really export (read
from the services' own Prometheus registry), and every service is scraped."""

import importlib
import json
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from rapport.shared.localstack import PROFILES, SERVICES
from tests.promql import metric_names

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "rapport-dashboard.json"
SCRAPE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
APPS = ("rapport.ingest.app", "rapport.profile.app", "rapport.scoring.app",
        "rapport.next_action.app", "rapport.console.app")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum",
                                                             "_created"),
            "summary": ("_count", "_sum", "_created"), "gauge": ("",), "info": ("_info",)}


def exported() -> set[str]:
    """Every sample name the services' metrics can have (importing each service's app
    registers all of its metrics with the default registry)."""
    for module in APPS:
        importlib.import_module(module)
    names: set[str] = set()
    for family in REGISTRY.collect():
        names |= {family.name + s for s in SUFFIXES.get(family.type, ("",))}
        names |= {s.name for s in family.samples}
    return names


def expressions() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p["targets"]]


def test_the_dashboard_has_the_ops_panels():
    titles = " ".join(t for t, _ in expressions()).lower()
    for word in ("ingest", "freshness", "dead letters", "decisions", "control share",
                 "demand", "outcomes"):
        assert word in titles


@pytest.mark.parametrize(("title", "expr"), expressions())
def test_every_panel_parses_and_names_real_metrics(title, expr):
    names = metric_names(expr)
    assert names, f"{title}: selects no metric"
    assert names <= exported(), f"{title}: not exported: {sorted(names - exported())}"


@pytest.mark.parametrize("bad", ["sum(rate(x[5m])", "rate(x[5q])", "x{a=b}", "sum by x (y)",
                                 "x +", "histogram_quantile(0.9 x)"])
def test_the_parser_refuses_broken_promql(bad):
    with pytest.raises(SyntaxError):
        metric_names(bad)


def test_the_parser_reads_what_dashboards_use():
    assert metric_names('sum by (le) (rate(a_bucket{x="1",y=~"b.*"}[5m])) / ignoring(z) '
                        'group_left b offset 5m > bool 0.5') == {"a_bucket", "b"}
    assert metric_names("-time() + vector(1) * 2e3") == set()


def test_every_service_is_scraped_on_its_port():
    config = yaml.safe_load(SCRAPE.read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]}
    ports = PROFILES["run"].service_ports
    assert targets == {f"{svc}:{ports[svc]}" for svc in SERVICES}
    assert all(job["metrics_path"] == "/metrics" for job in config["scrape_configs"])
