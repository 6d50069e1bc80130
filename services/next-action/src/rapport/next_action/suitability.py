"""Suitability: offers that are eligible but wrong for this customer.

Two documented rules on the scores (the issue "No needless discounts" then replaces
the second by measured uplift):

- no costly offer (cost at or above ``costly_cost``) to a worst-tier customer: the
  business spends on customers worth it;
- no discount to a customer likely to buy anyway at full price: recency and frequency
  scores both at least ``full_price_min_rf`` and P(alive) at least
  ``full_price_min_p_alive`` (the champions and loyal customers of RFM who are still
  active): they would have bought, the discount would only give margin away.

Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .catalog import Offer


@dataclass(frozen=True)
class SuitabilityRules:
    costly_cost: float = 5.0
    full_price_min_rf: int = 4
    full_price_min_p_alive: float = 0.8


def likely_full_price_buyer(scores: dict[str, Any], rules: SuitabilityRules) -> bool:
    rfm, clv = scores.get("rfm") or {}, scores.get("clv") or {}
    return (min(rfm.get("r") or 0, rfm.get("f") or 0) >= rules.full_price_min_rf
            and (clv.get("p_alive") or 0.0) >= rules.full_price_min_p_alive)


def refusals(offer: Offer, scores: dict[str, Any] | None, rules: SuitabilityRules) -> list[str]:
    """Why the offer does not suit this customer (empty when it does)."""
    if not scores:
        return []
    out = []
    if offer.cost >= rules.costly_cost and scores.get("value_tier") == "worst":
        out.append(f"unsuitable: costly offer (cost {offer.cost:g} >= {rules.costly_cost:g}) "
                   f"for a worst-tier customer")
    if offer.discount and likely_full_price_buyer(scores, rules):
        rfm = scores.get("rfm") or {}
        out.append(f"unsuitable: a discount for a customer likely to buy anyway at full "
                   f"price (r {rfm.get('r')}, f {rfm.get('f')}, P(alive) "
                   f"{(scores.get('clv') or {}).get('p_alive', 0):.2f})")
    return out
