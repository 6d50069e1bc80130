"""What a customer has earned the business so far, every cost a parameter.

profit = revenue - cost of goods - discounts given - returns - cost to serve, where the
cost of goods is known for order lines that carried a ``cost`` and is
``revenue x (1 - default_margin_rate)`` for the rest, and the cost to serve counts every
call, ticket, complaint and offer seen at its configured unit cost. Expected future
profit is the lifetime-value model's expected spend over the horizon times the
customer's own margin rate (the default where no cost was ever sent).
"""

from __future__ import annotations

from dataclasses import dataclass

from rapport.shared.profiles import Metrics

MONEY_LIMIT = 1e12


@dataclass(frozen=True)
class ProfitPolicy:
    default_margin_rate: float = 0.30
    cost_per_call: float = 4.0
    cost_per_ticket: float = 6.0
    cost_per_complaint: float = 15.0
    cost_per_offer: float = 0.10


@dataclass(frozen=True)
class Profit:
    revenue: float
    cost_of_goods: float
    discounts: float
    returns: float
    cost_to_serve: float
    margin_rate: float

    @property
    def profit(self) -> float:
        return bounded(self.revenue - self.cost_of_goods - self.discounts - self.returns
                       - self.cost_to_serve)


def bounded(value: float) -> float:
    if value != value:  # NaN
        return 0.0
    return min(max(value, -MONEY_LIMIT), MONEY_LIMIT)


def profit(m: Metrics, policy: ProfitPolicy, revenue_share: float = 1.0) -> Profit:
    """The profit so far; ``revenue_share`` (0-1) scales the order-related amounts to a
    moment before the latest orders (the share of spend made by then)."""
    share = min(1.0, max(0.0, revenue_share))
    known = min(max(m.margin_revenue, 0.0), max(m.revenue, 0.0))
    margin_rate = (m.margin / m.margin_revenue) if m.margin_revenue > 0 else \
        policy.default_margin_rate
    cogs = (known - m.margin) + (max(m.revenue, 0.0) - known) * (1 - policy.default_margin_rate)
    serve = (m.calls * policy.cost_per_call + m.tickets * policy.cost_per_ticket
             + m.complaints * policy.cost_per_complaint + m.offers_viewed * policy.cost_per_offer)
    return Profit(revenue=bounded(m.revenue * share), cost_of_goods=bounded(cogs * share),
                  discounts=bounded(m.discounts * share), returns=bounded(m.returned_value),
                  cost_to_serve=bounded(serve), margin_rate=min(1.0, max(-1.0, margin_rate)))
