"""Per-offer random holdouts: an offer the policy would have made is withheld with a
small, logged chance, so every offer has a counterfactual of its own (the customers it
was meant for, without it) besides the global control group. Pure.

A withheld offer still counts against the contact limits as if made: its customers
stay exchangeable with those who got it (the same limits apply to both afterwards).
Only marketing offers are held out; a service message is always sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from .arbitration import Candidate

HELD_OUT = "held_out"


def share(c: Candidate, default: float) -> float:
    if not c.offer.marketing:
        return 0.0
    return default if c.offer.holdout_share is None else c.offer.holdout_share


def withhold(ranked: Sequence[Candidate], verdicts: Mapping[str, str],
             probabilities: Mapping[str, float], default_share: float,
             draw: Callable[[], float]) -> tuple[dict[str, str], dict[str, float]]:
    """The verdicts with the held-out offers marked, and each candidate's chance of
    being made once the holdout is counted (what off-policy evaluation divides by)."""
    out_v, out_p = dict(verdicts), dict(probabilities)
    for c in ranked:
        h = share(c, default_share)
        oid = c.offer.offer_id
        if h <= 0:
            continue
        if oid in out_p:
            out_p[oid] = out_p[oid] * (1.0 - h)
        if out_v.get(oid) == "made" and draw() < h:
            out_v[oid] = HELD_OUT
    return out_v, out_p
