"""``rapport bench summary``: the rows built from the figures the benches left."""

from pathlib import Path

import pytest

from rapport.shared import bench_figures, bench_summary
from rapport.shared.bench_summary import MISSING, NONE, Row

INGEST = {"at": "2026-12-01T10:00:00+00:00", "events_per_s": 20_000.0,
          "perf_records_per_s": 100_000.0, "p50_ms": 30.0, "p99_ms": 120.0,
          "perf_p50_ms": 10.0, "perf_p99_ms": 40.0}


def _stage(p50: float, p99: float) -> dict[str, float]:
    return {"p50": p50, "p99": p99}


PROFILE = {
    "at": "2026-12-01T10:05:00+00:00", "getmany_orjson_per_s": 50_000.0,
    "one_worker_per_s": 5_000.0, "two_workers_per_s": 8_000.0,
    "redis_bytes_per_profile": 3_000.0, "redis_json_bytes": 1_200.0,
    "touchpoints_per_profile": 10,
    "demand_on_per_s": 4_000.0, "demand_off_per_s": 5_000.0, "demand_cost": 0.2,
    "demand_runs_on": [3_900.0, 4_100.0], "demand_runs_off": [5_000.0, 5_000.0],
    "freshness": [
        {"label": "5,000 ev/s", "rate": 5000.0, "probes": 150, "of_saturation": None,
         "p50_ms": 40.0, "p99_ms": 900.0,
         "stages": {"resolve": _stage(5, 20), "fold": {"p50": 12, "p99": 30_000,
                                                      "top": 30_000}}},
        {"label": "1,000 ev/s", "rate": 1000.0, "probes": 150, "of_saturation": None,
         "p50_ms": 20.0, "p99_ms": 60.0,
         "stages": {"resolve": _stage(3, 9), "fold": _stage(8, 30)}},
        {"label": "80%", "rate": 4000.0, "probes": 150, "of_saturation": 0.8,
         "p50_ms": 30.0, "p99_ms": 200.0, "stages": {"resolve": _stage(4, 15)}},
    ],
}


def _by_measure(rows: list[Row]) -> dict[str, Row]:
    return {r.measure: r for r in rows}


def test_every_figure_sits_next_to_its_limit_and_the_ratio() -> None:
    rows = bench_summary.rows({"ingest": INGEST, "profile": PROFILE})
    got = _by_measure(rows)
    assert got["ingest: events/s at saturation"] == Row(
        "ingest: events/s at saturation", "20,000",
        "100,000 records/s (Kafka ProducerPerformance)", "20.0%")
    assert got["ingest: latency p50 / p99 at saturation"] == Row(
        "ingest: latency p50 / p99 at saturation", "30 / 120 ms",
        "10 / 40 ms (ProducerPerformance)", "3.0x / 3.0x")
    one = got["profile: 1 worker, events/s per worker"]
    assert (one.figure, one.limit, one.ratio) == (
        "5,000", "50,000 events/s (aiokafka getmany + orjson)", "10.0%")
    two = got["profile: 2 workers, events/s per worker"]
    assert (two.figure, two.ratio) == ("4,000", "8.0%")  # 8,000 over two workers
    redis = got["Redis bytes per profile (all its keys, 10 touchpoints)"]
    assert (redis.figure, redis.limit, redis.ratio) == (
        "3,000 B", "1,200 B (the profile's JSON)", "2.5x")
    demand = got["profile: 1 worker, demand on, events/s"]
    assert (demand.figure, demand.limit, demand.ratio, demand.note) == (
        "4,000", "5,000 events/s (demand off, same events)", "80.0%", "back to back, 4 runs")
    cost = got["demand's cost to the profile path"]
    assert (cost.figure, cost.limit, cost.note) == ("20.0%", "goal < 40%", "meets the goal")
    assert "  Redis CPU per event folded, demand on" not in got  # not measured: no row
    redis_fx = {"demand_on_redis_cpu_us_per_event": 90.0,
                "demand_off_redis_cpu_us_per_event": 60.0,
                "demand_on_redis_commands_per_event": 1.5,
                "demand_off_redis_commands_per_event": 1.25}
    got = _by_measure(bench_summary.rows({"ingest": INGEST, "profile": PROFILE | redis_fx}))
    assert got["  Redis CPU per event folded, demand on"] == Row(
        "  Redis CPU per event folded, demand on", "90 µs", "60 µs (demand off)", "1.50x",
        "commands per event 1.50 vs 1.25")


def test_freshness_rows_follow_the_issue_order_with_both_stages() -> None:
    rows = bench_summary.rows({"ingest": INGEST, "profile": PROFILE})
    fresh = [r for r in rows if r.measure.startswith(("freshness", "  "))]
    assert [(r.measure, r.figure) for r in fresh] == [
        ("freshness at 1,000 ev/s: ingest 200 → GET, p50 / p99", "20 / 60 ms"),
        ("  resolve (ingest receipt → stored), p50 / p99", "3 / 9 ms"),
        ("  fold (ingest receipt → stored), p50 / p99", "8 / 30 ms"),
        ("freshness at 5,000 ev/s: ingest 200 → GET, p50 / p99", "40 / 900 ms"),
        ("  resolve (ingest receipt → stored), p50 / p99", "5 / 20 ms"),
        ("  fold (ingest receipt → stored), p50 / p99", "12 / ≥30,000 ms"),  # at the top
        ("freshness at 80% of saturation (4,000 ev/s): ingest 200 → GET, p50 / p99",
         "30 / 200 ms"),
        ("  resolve (ingest receipt → stored), p50 / p99", "4 / 15 ms"),
        ("  fold (ingest receipt → stored), p50 / p99", MISSING),  # not observed
    ]
    assert fresh[0].note == "150 probes; no limit measured"
    assert fresh[-1].note == "stage not observed"


def test_a_bench_that_did_not_run_is_marked_missing_row_by_row() -> None:
    rows = bench_summary.rows({"ingest": None, "profile": PROFILE})
    ingest = [r for r in rows if r.measure.startswith("ingest")]
    assert ingest == [
        Row("ingest: events/s at saturation", MISSING, NONE, NONE,
            "`rapport bench ingest` did not run"),
        Row("ingest: latency p50 / p99 at saturation", MISSING, NONE, NONE,
            "`rapport bench ingest` did not run")]
    assert _by_measure(rows)["profile: 1 worker, events/s per worker"].figure == "5,000"

    nothing = bench_summary.rows({"ingest": None, "profile": None})
    assert {r.figure for r in nothing} == {MISSING}
    assert len(nothing) == 2 + 2 + 3 + 1 + 2  # ingest, workers, freshness, Redis, demand
    assert {r.note for r in nothing} == {"`rapport bench ingest` did not run",
                                         "`rapport bench profile` did not run"}


def test_a_figure_the_run_skipped_is_missing_and_a_cost_over_the_goal_is_flagged() -> None:
    partial = {k: v for k, v in PROFILE.items()
               if k not in ("freshness", "demand_on_per_s", "two_workers_per_s")}
    rows = _by_measure(bench_summary.rows({"ingest": INGEST, "profile": partial}))
    for measure in ("profile: 2 workers, events/s per worker",
                    "freshness at 1,000 ev/s: ingest 200 → GET, p50 / p99",
                    "freshness at 80% of saturation: ingest 200 → GET, p50 / p99",
                    "demand's cost to the profile path"):
        assert rows[measure].figure == MISSING
        assert rows[measure].note == "not measured in this run"
    costly = {**PROFILE, "demand_on_per_s": 2_000.0, "demand_cost": 0.6}
    cost = _by_measure(bench_summary.rows({"ingest": INGEST, "profile": costly}))[
        "demand's cost to the profile path"]
    assert (cost.figure, cost.note) == ("60.0%", "OVER the goal")


def test_figures_round_trip_through_the_bench_folder(tmp_path: Path) -> None:
    figures = bench_figures.Figures("ingest", tmp_path)
    figures.update(events_per_s=1.5)
    assert bench_figures.load(tmp_path)["ingest"] == {"at": figures["at"], "events_per_s": 1.5}
    assert bench_figures.load(tmp_path)["profile"] is None
    bench_figures.Figures("ingest", tmp_path)  # a new run drops the last one's figures
    assert set(bench_figures.load(tmp_path)["ingest"] or {}) == {"at"}


@pytest.mark.parametrize("figures", [{"ingest": INGEST, "profile": PROFILE},
                                     {"ingest": None, "profile": None}])
def test_the_table_has_one_line_per_row(figures: dict) -> None:
    assert bench_summary.table(figures).row_count == len(bench_summary.rows(figures))
