"""The console's pure parts: reason texts, search look-ups, metric parsing, lag trend and
time to clear, screen-pop detection, dead-letter summaries."""

import math
import time

import orjson

from rapport.console import agent_view, lag, prom_text, reasons, search
from rapport.console.ops_collector import letter_summary
from rapport.console.screenpop import calls_rang, newest_call
from rapport.console.sessions import Sessions
from rapport.shared.auth import Role


def test_an_action_line_says_why_what_it_is_worth_and_what_it_costs():
    line = reasons.action_line({"name": "retention credit", "value": 30, "cost": 4,
                                "reasons": ["eligible"]}, churn_risk=0.8)
    assert line.startswith("high churn risk; retention credit worth 30 at a cost of 4")
    assert "eligible" in reasons.action_line({"name": "x", "value": 1, "reasons":
                                              ["eligible"]}, churn_risk=0.1)


def test_score_reasons_read_as_plain_language():
    assert reasons.churn_reason(0.72, 140.4) == "high churn risk (72%): last purchase 140 days ago"
    assert reasons.churn_reason(None, None) == "churn risk not scored yet"
    assert "no purchase yet" in reasons.churn_reason(0.1, None)
    assert reasons.clv_reason({"expected_orders_90d": 1.44, "expected_value_90d": 85.2,
                               "p_alive": 0.8}) == (
        "expected 1.4 orders worth 85.2 in the next 90 days; 80% likely still active")
    assert reasons.rfm_reason({"r": 5, "f": 1, "m": 3, "label": "new"}) == (
        "R5 F1 M3 (new): bought recently, rarely; average spend")
    assert reasons.rfm_reason({}) == "no purchases to score"
    assert reasons.money(1234.4) == "1,234" and reasons.money(4.5) == "4.5"


def test_search_tries_what_the_text_may_be():
    assert search.lookups(" ada@example.com ") == [("email", "ada@example.com")]
    assert search.lookups("+44 20 7946 0958")[0] == ("phone", "+44 20 7946 0958")
    assert [k for k, _ in search.lookups("L-123")] == ["customer_id", "loyalty_id",
                                                       "anonymous_id"]
    assert search.lookups("   ") == []


def test_the_360_view_keeps_orders_and_service_contacts_apart():
    tl = [{"event": "Call Started", "properties": {"reason": "billing"}, "timestamp": "t3"},
          {"event": "Order Completed", "properties": {"order_id": "o1", "total": 12.5},
           "timestamp": "t2"},
          {"type": "page", "name": "Home", "timestamp": "t1", "properties": {}}]
    v = agent_view.customer_view({"customer_id": "c1", "traits": {"name": "Ada"}}, tl, None)
    assert v["name"] == "Ada"
    assert [e["text"] for e in v["orders"]] == ["Order Completed: order o1, total 12.5"]
    assert [e["text"] for e in v["contacts"]] == ["Call Started: reason: billing"]
    assert v["timeline"][-1]["text"] == "Home"
    assert agent_view.display_name({"customer_id": "c9"}) == "Customer c9"


METRICS = """# TYPE rapport_ingest_messages_total counter
rapport_ingest_messages_total{source="dev",outcome="accepted",reason=""} 10
rapport_ingest_messages_total{source="web",outcome="accepted",reason=""} 5
rapport_ingest_messages_total{source="dev",outcome="rejected",reason="bad"} 2
# TYPE rapport_profile_freshness_seconds histogram
rapport_profile_freshness_seconds_bucket{stage="fold",le="0.1"} 50
rapport_profile_freshness_seconds_bucket{stage="fold",le="1.0"} 100
rapport_profile_freshness_seconds_bucket{stage="fold",le="+Inf"} 100
rapport_profile_freshness_seconds_count{stage="fold"} 100
rapport_profile_freshness_seconds_sum{stage="fold"} 20
"""


def test_metrics_are_summed_by_label_and_rated_between_readings():
    s = prom_text.parse(METRICS)
    by = prom_text.total(s, "rapport_ingest_messages_total", by="outcome")
    assert by == {"accepted": 15.0, "rejected": 2.0}
    assert prom_text.rates({"accepted": 5.0}, by, 2.0) == {"accepted": 5.0, "rejected": 1.0}
    assert prom_text.rates({"accepted": 50.0}, {"accepted": 4.0}, 2.0) == {"accepted": 2.0}
    merged = prom_text.merge([s, s])
    assert prom_text.total(merged, "rapport_ingest_messages_total") == {"": 34.0}


def test_histogram_quantiles_interpolate_as_prometheus_does():
    b = prom_text.buckets(prom_text.parse(METRICS), "rapport_profile_freshness_seconds",
                          {"stage": "fold"})
    assert prom_text.quantile(0.5, b) == 0.1
    assert math.isclose(prom_text.quantile(0.75, b), 0.55)
    assert prom_text.quantile(0.5, {}) is None
    assert prom_text.quantile(0.99, {1.0: 0, math.inf: 4}) == 1.0
    assert prom_text.increase({0.1: 10, math.inf: 20}, {0.1: 15, math.inf: 30}) == {
        0.1: 5, math.inf: 10}


def test_lag_trend_and_time_to_clear():
    falling = [(t, 1000 - 10 * t) for t in range(0, 60, 2)]
    assert lag.trend(falling) == "shrinking"
    assert math.isclose(lag.time_to_clear(falling), falling[-1][1] / 10)
    rising = [(t, 10 * t) for t in range(10)]
    assert lag.trend(rising) == "growing" and lag.time_to_clear(rising) is None
    assert lag.time_to_clear([(0, 0)]) == 0 and lag.describe_clear(0) == "clear"
    assert lag.trend([(0, 5)]) == "steady"
    assert lag.describe_clear(30) == "~30 s" and lag.describe_clear(600) == "~10 min"
    assert lag.describe_clear(None) == "not clearing"


def _update(calls: int, last_seen: str) -> bytes:
    return orjson.dumps({"metrics": {"calls": calls, "last_seen": last_seen}})


def test_a_new_call_is_seen_in_the_profile_updates():
    now = time.time()
    recent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 5))
    old = "2020-01-01T00:00:00Z"
    seen: dict[str, int] = {}
    assert calls_rang(seen, [(b"a", _update(0, recent)), (b"b", _update(2, old)),
                             (b"c", _update(1, recent)), (b"d", None)], now, 60) == ["c"]
    assert calls_rang(seen, [(b"a", _update(1, recent)), (b"b", _update(2, recent)),
                             (b"a", _update(1, recent))], now, 60) == ["a"]
    assert calls_rang(seen, [(b"x", b"not json")], now, 60) == []


def test_the_newest_call_of_a_timeline_within_the_window():
    now = time.time()
    at = lambda s: time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - s))  # noqa: E731
    tl = [{"event": "Page", "timestamp": at(1)},
          {"event": "Call Started", "timestamp": at(3), "properties": {"reason": "x"}},
          {"event": "Call Started", "timestamp": at(300)}]
    assert newest_call(tl, now, 60)["properties"] == {"reason": "x"}
    assert newest_call(tl[2:], now, 60) is None


def test_dead_letters_are_summarised_without_their_message():
    s = letter_summary(orjson.dumps({"source": "dev", "reason": "invalid_timestamp",
                                     "message": {"userId": "secret@example.com"}}),
                       "t", 7)
    assert s == {"topic": "t", "offset": 7, "reason": "invalid_timestamp", "source": "dev"}
    assert letter_summary(b"\xff", "t", 1)["reason"] == "not a JSON dead letter"
    assert letter_summary(orjson.dumps({"errors": ["a", "b"]}), "t", 2)["reason"] == "a; b"


def test_sessions_hold_the_key_server_side_and_end_on_sign_out():
    sessions = Sessions(ttl_s=60)
    sid = sessions.open("dev-agent", Role.AGENT)
    assert "dev-agent" not in sid and sessions.get(sid).role is Role.AGENT
    sessions.close(sid)
    assert sessions.get(sid) is None and sessions.get(None) is None
    expired = Sessions(ttl_s=-1)
    assert expired.get(expired.open("k", Role.OPS)) is None


def test_the_ops_view_reads_rates_and_lag_from_offsets_and_metrics():
    from collections import deque

    from rapport.console import ops_view
    from rapport.console.ops_collector import Collected, Sample

    def sample(at, end, committed, accepted):
        metrics = prom_text.parse(
            "# TYPE rapport_ingest_messages_total counter\n"
            f'rapport_ingest_messages_total{{source="dev",outcome="accepted",reason=""}} '
            f"{accepted}\n")
        return Sample(at, {("rapport.touchpoints.v1", 0): end,
                           ("rapport.touchpoints.dead-letter.v1", 0): 2},
                      {"rapport-profile": {("rapport.touchpoints.v1", 0): committed}}, metrics)

    data = Collected(samples=deque([sample(100.0, 100, 0, 100), sample(102.0, 120, 40, 120),
                                    sample(104.0, 140, 90, 140)]))
    view = ops_view.build(data, {}, {"offers": [{"offer_id": "o", "decisions": 10,
                                                  "expected_acceptances": 2.0,
                                                  "acceptances": 3, "profit": 1.0}]}, [])
    (topic,) = [t for t in view["topics"] if t["topic"] == "rapport.touchpoints.v1"]
    assert topic["rate"] == 10.0 and topic["total"] == 140
    (group,) = view["groups"]
    assert group["lag"] == 50 and group["trend"] == "shrinking"
    assert group["clears_in"] == "~4 s"  # falling 12.5 records/s (least squares)
    assert view["ingest"]["accepted"] == {"total": 140.0, "rate": 10.0}
    assert view["dead_letters"]["rapport.touchpoints.dead-letter.v1"] == 2
    assert view["offers"][0]["actual_rate"] == 0.3 and view["offers"][0]["expected_rate"] == 0.2
    assert ops_view.build(Collected(), {}, None, [])["ready"] is False
