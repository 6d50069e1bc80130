"""The world ``rapport bench next-action`` decides in: a catalog of varied offers, a
population of customers stored as the profile service keeps them (the scoring
bench's synthetic BG/NBD customers, with identity links and the consents a decision
reads), and a response model trained on synthetic outcomes, so that eligibility,
consent, contact limits, budgets and predictions all do their real work.

Written straight to Redis: a bench-only shortcut past ingest and profile."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime

import numpy as np
import redis
from scipy.special import ndtr

from rapport.scoring.bench_data import (
    btyd_histories,
    customer_id,
    synthetic_profile,
    write_population,
)
from rapport.shared import identifiers, keys
from rapport.shared.layout import ProfileLayout
from rapport.shared.profiles import Consent
from rapport.shared.purchases import day_before

from .features import CHANNELS, FEATURES, N_CUSTOMER_START, base_features
from .learner import ProbitModel
from .learning_store import RATE

DECISION_CHANNELS = ("web", "email", "mobile", "call_center")
_OFFER_CHANNELS = (*DECISION_CHANNELS, "store", "chat")
_KINDS = (("offer", 50), ("cross_sell", 20), ("retention", 12), ("service", 15),
          ("no_action", 3))
_CATEGORIES = ("shoes", "bags", "hats", "shirts", "coats", "socks", "belts")
PAGES = ("home", "product", "cart", "account", "search")


def _condition(rng: random.Random) -> dict:
    """One eligibility condition on a profile, score or context field."""
    return rng.choice([
        lambda: {"field": "profile.metrics.orders", "op": "gte", "value": rng.randint(1, 4)},
        lambda: {"field": "profile.metrics.revenue", "op": "gte",
                 "value": rng.choice([50, 100, 300])},
        lambda: {"field": "profile.traits.region", "op": "in",
                 "value": rng.sample(["north", "south", "east", "west"], 2)},
        lambda: {"field": "profile.traits.plan", "op": "ne", "value": "free"},
        lambda: {"field": f"profile.affinities.{rng.choice(_CATEGORIES)}", "op": "exists"},
        lambda: {"field": "scores.value_tier", "op": "in",
                 "value": rng.choice([["best"], ["best", "average"], ["average", "worst"]])},
        lambda: {"field": "scores.churn_risk", "op": rng.choice(["gte", "lt"]),
                 "value": rng.choice([0.3, 0.5, 0.7])},
        lambda: {"field": "scores.clv.p_alive", "op": "gte", "value": 0.2},
        lambda: {"field": "context.page", "op": "in", "value": rng.sample(PAGES, 3)},
        lambda: {"field": "context.cart_value", "op": "gte", "value": rng.choice([20, 50])},
    ])()


def catalog(n: int, seed: int = 5) -> list[dict]:
    """``n`` offers: mostly marketing of several kinds, some service messages and a
    no-action; 0-3 conditions each; a third with contact limits, a tenth with a budget."""
    rng = random.Random(seed)
    kinds, weights = zip(*_KINDS, strict=True)
    offers = []
    for i in range(n):
        kind = rng.choices(kinds, weights)[0]
        offer: dict = {
            "offer_id": f"bench-{i:03d}", "name": f"Bench offer {i}", "kind": kind,
            "channels": rng.sample(_OFFER_CHANNELS, rng.randint(2, 4)),
            "value": round(rng.uniform(2, 150), 2), "cost": round(rng.uniform(0, 4), 2),
            "eligibility": [_condition(rng) for _ in range(rng.choice((0, 1, 1, 2, 2, 3)))],
            "priority": round(rng.uniform(0.5, 3), 2), "category": rng.choice(_CATEGORIES),
            "discount": rng.random() < 0.2}
        if rng.random() < 0.33:
            offer["contact"] = rng.choice([
                {"max": rng.randint(1, 3), "days": 7},
                {"pause_after_rejections": 2, "pause_days": 14},
                {"stop_after_accept": True},
                {"max": 5, "days": 30, "stop_after_accept": True}])
        if rng.random() < 0.1:
            offer["budget"] = {"per_day": rng.choice([20_000, 100_000, 1_000_000]),
                               "counts": rng.choice(["made", "accepted"])}
        offers.append(offer)
    return offers


def write_customers(redis_url: str, run: str, count: int, as_of: datetime,
                    seed: int = 7, chunk: int = 5000) -> None:
    """``count`` customers (ids ``customer_id(run, i)``): their profiles with the
    consents most give (email marketing, personalization), the identity links the
    profile service keeps (user id, anonymous id, email) and the population sketches."""
    client = redis.Redis.from_url(redis_url)
    rng = random.Random(seed)
    end_day = day_before(as_of)
    points = np.empty((count, 3))
    try:
        for start in range(0, count, chunk):
            n = min(chunk, count - start)
            stored: dict[str, bytes | str] = {}
            for k, days in enumerate(btyd_histories(n, seed * 1_000_003 + start, end_day)):
                cid = customer_id(run, start + k)
                profile = synthetic_profile(cid, days, rng)
                at = profile.metrics.first_seen or as_of
                profile.consents = {
                    "marketing_email": Consent(value=rng.random() < 0.85, at=at),
                    "personalization": Consent(value=rng.random() < 0.9, at=at),
                    "marketing_sms": Consent(value=rng.random() < 0.3, at=at)}
                stored[ProfileLayout().profile(cid)] = profile.to_stored()
                for ident in profile.identities:
                    norm = identifiers.normalize(ident.type, ident.value)
                    if norm is not None:
                        stored[keys.identity(ident.type, norm)] = cid
                points[start + k] = (max(days), len(days), sum(days.values()))
            client.mset(stored)
    finally:
        client.close()
    asyncio.run(write_population(redis_url, points, seed))


def train_model(offer_ids: list[str], outcomes: int, seed: int = 3) -> ProbitModel:
    """A probit model trained on ``outcomes`` synthetic decisions: random customers'
    feature vectors, each offer with hidden weights (a few percent accept)."""
    rng = np.random.default_rng(seed)
    d, c0 = len(FEATURES), N_CUSTOMER_START
    true_w = rng.normal(0, 0.6, size=(len(offer_ids), d))
    true_w[:, 0] = rng.normal(-1.9, 0.3, size=len(offer_ids))
    model = ProbitModel()
    for _ in range(outcomes):
        k = int(rng.integers(len(offer_ids)))
        x = base_features(CHANNELS[int(rng.integers(4))])
        x[c0:] = (rng.random(d - c0) < 0.5) * rng.random(d - c0)
        x[c0] = 1.0  # known
        accepted = rng.random() < float(ndtr(true_w[k] @ x))
        model.update(offer_ids[k], x, accepted)
    return model


def write_model(redis_url: str, model: ProbitModel, rates: dict[str, tuple[int, int]],
                ) -> None:
    """The model as the learner stores it: ``to_fields()``, the per-offer rates and
    the version the service watches."""
    client = redis.Redis.from_url(redis_url)
    try:
        fields: dict[str, bytes | str] = dict(model.to_fields())
        fields |= {RATE + o: f"{a},{b}" for o, (a, b) in rates.items()}
        fields["version"] = str(model.version)
        client.delete(keys.learner_model())
        client.hset(keys.learner_model(), mapping=fields)
    finally:
        client.close()


def asks(run: str, customers: int, n: int, seed: int, limit: int = 3) -> list[dict]:
    """``n`` request bodies: random customers, by id (a fifth by email, a few unknown),
    the four channels, a page and a cart value in the context."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        i = rng.randrange(customers)
        roll = rng.random()
        who = (f"{customer_id(run, i)}@example.com" if roll < 0.2 else
               f"{run}-stranger-{i}" if roll < 0.22 else customer_id(run, i))
        out.append({"customer_id": who, "channel": rng.choice(DECISION_CHANNELS),
                    "context": {"page": rng.choice(PAGES),
                                "cart_value": round(rng.uniform(0, 120), 2)},
                    "limit": limit})
    return out
