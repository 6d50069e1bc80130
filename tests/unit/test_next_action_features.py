"""Customer features are bounded whatever the profile holds, and carry nothing of the
profile without personalization."""

from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.next_action.features import FEATURES, INDEX, N_CUSTOMER_START, customer_features
from rapport.next_action.simworld import learners, world
from rapport.shared import facts
from rapport.shared.events import Channel
from rapport.shared.scores.compute import score
from rapport.shared.scores.model import PRIOR

NOW = datetime(2026, 6, 1, tzinfo=UTC)
anything = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3))
METRICS = ("orders", "revenue", "discounts", "complaints", "service_contacts", "returns",
           "emails_delivered", "emails_opened", "touchpoints", "average_order_value",
           "purchase_days", "unsubscribed_at")
profiles = st.fixed_dictionaries({
    "metrics": st.dictionaries(st.sampled_from(METRICS), anything),
    "rfm": st.dictionaries(st.just("recency_days"), anything),
    "affinities": st.dictionaries(st.text(max_size=4), anything, max_size=3),
    "channels": st.dictionaries(st.sampled_from([c.value for c in Channel]),
                                st.one_of(anything, st.fixed_dictionaries({"count": anything})),
                                max_size=4),
    "consents": st.dictionaries(st.just("personalization"), st.booleans()),
})
scores = st.fixed_dictionaries({
    "rfm": st.dictionaries(st.sampled_from(["r", "f", "m"]), anything),
    "clv": st.dictionaries(st.sampled_from(["p_alive", "expected_orders_90d",
                                            "expected_value_90d"]), anything),
    "churn_risk": anything, "value_tier": st.sampled_from(["best", "average", "worst", "x"]),
})


@settings(max_examples=300, deadline=None)
@given(profiles, st.one_of(st.none(), scores), st.sampled_from([c.value for c in Channel]))
def test_every_feature_is_finite_and_within_zero_and_one(profile, s, channel):
    x = customer_features(profile, s, channel, {})
    assert x.dtype == np.float64 and x.shape == (len(FEATURES),)
    assert np.all(np.isfinite(x)) and x.min() >= 0 and x.max() <= 1
    assert x[0] == 1 and x[INDEX[f"channel_{channel}"]] == 1


def test_without_personalization_only_the_intercept_and_channel_are_set():
    sim = world.customers(1, 5)[0]
    profile = facts.describe(learners.fold([sim], NOW)[0], NOW)
    s = score(learners.fold([sim], NOW)[0], NOW, PRIOR, learners.population([], NOW)
              ).model_dump(mode="json")
    full = customer_features(profile, s, "email", {})
    assert full[INDEX["known"]] == 1 and np.count_nonzero(full[N_CUSTOMER_START:]) > 8
    for x in (customer_features(profile, s, "email", {}, personalised=False),
              customer_features(None, None, "email", {}),
              customer_features({**profile, "consents": {"personalization": False}}, s,
                                "email", {})):
        assert set(np.flatnonzero(x)) == {0, INDEX["channel_email"]}


def test_every_channel_has_its_own_one_hot_and_kinds_look_different():
    assert all(f"channel_{c.value}" in INDEX for c in Channel)
    sims = learners.sim_customers(150, 9, NOW)
    by_kind = {k: np.mean([s.x for s in sims if s.customer.kind == k], axis=0)
               for k in world.KINDS}
    assert by_kind["bargain"][INDEX["discount_share"]] > 0.1
    assert by_kind["loyal"][INDEX["discount_share"]] == 0
    assert by_kind["lapsing"][INDEX["has_complaint"]] == 1
    assert by_kind["big_spender"][INDEX["log_average_order_value"]] > \
        by_kind["loyal"][INDEX["log_average_order_value"]]
