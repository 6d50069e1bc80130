"""Purchase history by day: BTYD counting, as-of summaries, order independence, caps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.shared import purchases
from rapport.shared.purchases import PurchaseHistory, day_before, day_of

START = datetime(1997, 1, 1, 12, tzinfo=UTC)
orders = st.lists(st.tuples(st.integers(0, 700), st.floats(0, 500).map(lambda v: round(v, 2))),
                  max_size=40)


def history(rows: list[tuple[int, float]]) -> PurchaseHistory:
    h = PurchaseHistory()
    for day, value in rows:
        h.add(START + timedelta(days=day), value)
    return h


def test_counts_distinct_days_and_weeks_as_in_btyd() -> None:
    h = history([(0, 10.0), (0, 5.0), (14, 20.0), (28, 30.0), (300, 99.0)])
    s = h.summary(datetime(1997, 10, 1, tzinfo=UTC))
    assert s is not None
    assert (s.purchase_days, s.frequency) == (3, 2)
    assert s.recency_weeks == 4.0
    assert s.age_weeks == (datetime(1997, 9, 30) - datetime(1997, 1, 1)).days / 7
    assert s.first_value == 15.0 and s.repeat_value == 50.0 and s.mean_repeat_value == 25.0


def test_the_end_of_a_day_reads_the_same_however_written() -> None:
    assert day_before(datetime(1997, 10, 1, tzinfo=UTC)) == \
        day_before(datetime(1997, 9, 30, 23, 59, 59, tzinfo=UTC)) == \
        day_of(datetime(1997, 9, 30, tzinfo=UTC))
    h = history([(0, 1.0), (272, 2.0), (273, 4.0)])  # 273 is 1997-10-01
    s = h.summary(datetime(1997, 10, 1, tzinfo=UTC))
    assert s is not None and s.purchase_days == 2 and s.total_value == 3.0


def test_no_purchase_by_then_has_no_summary() -> None:
    assert history([(10, 5.0)]).summary(START) is None
    assert PurchaseHistory().summary(START) is None


@settings(max_examples=200, deadline=None)
@given(orders, st.randoms())
def test_any_arrival_order_gives_the_same_history(rows: list[tuple[int, float]], rnd) -> None:
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    assert history(rows) == history(shuffled)


@settings(max_examples=200, deadline=None)
@given(orders, orders)
def test_merging_two_people_is_folding_both(a: list[tuple[int, float]],
                                            b: list[tuple[int, float]]) -> None:
    merged = history(a).merged(history(b))
    assert merged.days == history(a + b).days


def test_past_the_cap_the_oldest_days_fold_into_the_base() -> None:
    n = purchases.MAX_DAYS + 50
    h = history([(d, 1.0) for d in range(n)])
    assert len(h.days) == purchases.MAX_DAYS and h.base is not None
    assert h.base.days == 50 and h.base.first_day == day_of(START)
    s = h.summary(START + timedelta(days=n))
    assert s is not None and s.purchase_days == n and s.total_value == n
    h.add(START, 2.0)  # a late order on the first day joins the base
    s2 = h.summary(START + timedelta(days=n))
    assert s2 is not None and s2.purchase_days == n and s2.first_value == 3.0
