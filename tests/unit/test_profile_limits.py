"""A profile stays bounded whatever it is sent, and every record the profile service
writes of it stays under Kafka's limit, checked at the caps: the longest ids, traits
at their size cap, the most affinities with the longest names, the longest merge
history, a full timeline of the largest entries, sealed as they go on Kafka."""

from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapport.profile import domain, limits, merging
from rapport.profile.identities import MAX_IDENTITIES
from rapport.profile.store import timeline_entry
from rapport.shared import vault
from rapport.shared.events import MessageType, ProfileStep, StepKind, Touchpoint
from rapport.shared.profiles import CustomerProfile
from rapport.shared.sealing import HANDOVER_PERSONAL, PROFILE_PERSONAL

T0 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=30)
KAFKA_MAX = 1024 * 1024
KEY, KID = bytes(32), "0" * 32


def tp(i: int, **kw) -> Touchpoint:
    fields = {"type": MessageType.IDENTIFY, **kw}
    return Touchpoint(message_id=f"m{i}", source="s", channel="web",
                      timestamp=T0 + timedelta(seconds=i), received_at=T0, **fields)


def long(prefix: str, i: int, n: int) -> str:
    return f"{prefix}{i}-".ljust(n, "x")


def profile_at_every_cap() -> CustomerProfile:
    uid = long("user", 0, 256)
    p = None
    for i in range(300):  # identifiers and traits far past their caps
        p = domain.apply(p, tp(i, user_id=uid, anonymous_id=long("anon", i, 256), traits={
            "email": f"{long('e', i, 60)}@example.com", "loyalty_id": long("L", i, 256),
            long("trait", i, 64): "v" * 1000, f"n{i}": i}), customer_id=uid,
            processed_at=NOW)
    for i in range(200):  # affinities past the cap, with names past their length cap
        p = domain.apply(p, tp(1000 + i, user_id=uid, type=MessageType.TRACK,
                               event="Product Viewed",
                               properties={"category": long("cat", i, 5000)}),
                         customer_id=uid, processed_at=NOW)
    for i in range(300):  # a merge history past its cap
        p = merging.merge(p, CustomerProfile(customer_id=long("~a:", i, 259)), processed_at=NOW)
    assert p is not None
    return p


def test_a_profile_at_every_cap_is_bounded_and_its_records_fit_kafka():
    p = profile_at_every_cap()
    assert len(p.identities) == MAX_IDENTITIES
    assert len(p.traits) <= limits.MAX_TRAITS
    assert len(orjson.dumps(p.traits)) <= limits.MAX_TRAITS_BYTES
    assert len(p.affinities) == limits.MAX_AFFINITIES
    assert max(map(len, p.affinities)) <= limits.MAX_CATEGORY
    assert len(p.merged_from) == limits.MAX_MERGED_FROM
    stored, published = limits.encoded(p)
    sealed = orjson.dumps(vault.seal_fields(orjson.loads(published), PROFILE_PERSONAL,
                                            KEY, KID))
    assert len(published) < limits.RECORD_LIMIT and len(sealed) < KAFKA_MAX
    assert len(stored) < len(published)

    big = {f"p{k}": "y" * 3000 for k in range(9)}  # a 27 KB message, as ingest allows
    timeline = [timeline_entry(tp(i, user_id="u", type=MessageType.TRACK, event="E" * 200,
                                  properties=big)) for i in range(500)]
    assert all(len(entry.encode()) <= limits.MAX_TIMELINE_ENTRY_BYTES for _, entry in timeline)
    handover = ProfileStep(kind=StepKind.MERGE_IN, profile_id="s", absorbed_id=p.customer_id,
                           absorbed=p.model_dump(mode="json"),
                           timeline=limits.newest_entries(timeline, 100))
    record = orjson.dumps(vault.seal_fields(orjson.loads(handover.to_bytes()),
                                            HANDOVER_PERSONAL, KEY, KID))
    assert len(record) < KAFKA_MAX


def test_sums_stay_finite_whatever_the_amounts():
    p = None
    for i, total in enumerate((1e308, 1e308, float("inf"), -1e308, 10**400, float("nan"))):
        p = domain.apply(p, tp(i, user_id="u", type=MessageType.TRACK, event="Order Completed",
                               properties={"total": total, "products": [
                                   {"quantity": 1e300, "price": 1e300, "cost": -1e300}]}),
                         customer_id="u", processed_at=NOW)
    assert p is not None
    m = p.metrics
    for value in (m.revenue, m.margin, m.margin_revenue, m.discounts):
        assert abs(value) <= limits.MAX_SUM
    assert 0 <= m.units <= limits.MAX_COUNT
    limits.encoded(p)  # storable: no infinity, no 70-bit integer


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats()
    | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=70), inner,
                                                                max_size=4),
    max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(st.text(max_size=80), json_values, max_size=6), max_size=30))
def test_any_traits_leave_a_storable_bounded_profile(trait_sets):
    p = None
    for i, traits in enumerate(trait_sets):
        p = domain.apply(p, tp(i, user_id="u", traits=traits), customer_id="u",
                         processed_at=NOW)
    if p is not None:
        assert len(p.traits) <= limits.MAX_TRAITS
        _, published = limits.encoded(p)
        assert len(published) < limits.RECORD_LIMIT
