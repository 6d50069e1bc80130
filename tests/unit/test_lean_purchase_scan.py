"""The refit's lean read of a stored profile gives what the validated profile gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.shared import purchases
from rapport.shared.customers import stored_purchase_summary
from rapport.shared.profiles import CustomerProfile, Identity
from rapport.shared.purchases import day_before

START = datetime(1997, 1, 1, 12, tzinfo=UTC)
amounts = st.one_of(st.floats(0, 5000).map(lambda v: round(v, 2)), st.just(0.0),
                    st.integers(0, 300).map(float))
orders = st.lists(st.tuples(st.integers(0, 900), amounts), max_size=60)


def profile(rows: list[tuple[int, float]], cid: str = "c-1") -> CustomerProfile:
    p = CustomerProfile(customer_id=cid, identities=[Identity(type="user_id", value=cid)],
                        traits={"email": f"{cid}@example.com", "plan": "gold"})
    for day, value in rows:
        at = START + timedelta(days=day, hours=day % 11)
        p.purchases.add(at, value)
        p.metrics.orders += 1
        p.metrics.revenue = round(p.metrics.revenue + value, 2)
    return p


def as_of_moments(rows: list[tuple[int, float]]) -> list[datetime]:
    """Before anything, on and around purchase days, and long after."""
    days = sorted({d for d, _ in rows}) or [0]
    picks = {days[0] - 1, days[0], days[len(days) // 2], days[-1], days[-1] + 400}
    moments = [START - timedelta(days=400)]
    for d in picks:
        base = START.replace(hour=0) + timedelta(days=d)
        moments += [base, base + timedelta(hours=12), base + timedelta(days=1),
                    base + timedelta(days=1, microseconds=-1)]
    return moments


@settings(max_examples=300, deadline=None)
@given(orders)
def test_lean_summary_is_the_profiles_summary(rows: list[tuple[int, float]]) -> None:
    p = profile(rows)
    stored, plain = p.to_stored(), p.to_bytes()
    for at in as_of_moments(rows):
        expected = CustomerProfile.from_bytes(stored).purchases.summary(at)
        assert stored_purchase_summary(stored, day_before(at)) == expected
        assert stored_purchase_summary(plain, day_before(at)) == expected
        assert expected == p.purchases.summary(at)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 120), st.integers(0, 50), amounts)
def test_past_the_cap_the_base_is_read_too(extra: int, late: int, value: float) -> None:
    rows = [(d, 1.5 + d % 7) for d in range(purchases.MAX_DAYS + extra)] + [(late, value)]
    p = profile(rows)
    assert p.purchases.base is not None
    for at in as_of_moments(rows):
        assert stored_purchase_summary(p.to_stored(), day_before(at)) == \
            CustomerProfile.from_bytes(p.to_stored()).purchases.summary(at)


def test_a_profile_without_purchases_has_no_summary() -> None:
    p = CustomerProfile(customer_id="visitor")
    p.metrics.touchpoints = 3
    assert stored_purchase_summary(p.to_stored(), day_before(START)) is None
    assert stored_purchase_summary(p.to_bytes(), day_before(START)) is None


def test_keys_named_purchases_in_a_persons_data_are_not_taken_for_the_history() -> None:
    at = START + timedelta(days=30)
    lookalike = {"days": {"10000": 99.0}}
    no_purchases = CustomerProfile.model_validate({
        "customer_id": "c-2", "traits": {"purchases": lookalike, "signals": 1},
        "trait_times": {"purchases": START, "signals": START},
        "affinities": {"purchases": {"score": 1.0, "as_of": START}}})
    for raw in (no_purchases.to_stored(), no_purchases.to_bytes()):
        assert stored_purchase_summary(raw, day_before(at)) is None
    buyer = profile([(3, 12.5), (9, 7.25)])
    buyer.traits["purchases"] = lookalike
    buyer.affinities["purchases"] = no_purchases.affinities["purchases"]
    buyer.merged_from = ['"purchases":{"days":{"1":1.0}}']
    buyer.add_signal(9000, "complaint")
    for raw in (buyer.to_stored(), buyer.to_bytes()):
        assert stored_purchase_summary(raw, day_before(at)) == buyer.purchases.summary(at)


def test_a_lookalike_history_nested_in_a_persons_data_is_never_read() -> None:
    """Even where no later key named "purchases" follows it (built by hand: the profile
    service always writes trait_times with traits)."""
    at = START + timedelta(days=30)
    p = CustomerProfile.model_validate({
        "customer_id": "c-3", "traits": {"purchases": {"days": {"10000": 99.0}},
                                         "signals": [[1, "complaint"]]}})
    assert '"purchases":{"days":{"10000":99.0}},"signals":' in p.to_bytes().decode()
    for raw in (p.to_stored(), p.to_bytes()):
        assert stored_purchase_summary(raw, day_before(at)) is None
