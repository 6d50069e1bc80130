"""Attribution, pure: what a logged decision opens (its attribution window), and what a
closed window says (the :class:`~.uplift.Response` a learner learns from, and the
uplift report's counters).

The rule: an order counts as the response to the customer's most recent decision at
or before the order's time and within the window (default 7 days), whether that
decision made an offer, held one out or was a control decision; a refund counts
against the decision its order was attributed to. A window closes ``window + grace``
after its decision (the grace covers the pipeline's lag); what arrives later is
counted as late and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from rapport.shared.events import DecisionLogged

from .uplift import Response

ANY = "*"
"""The report's row of every decision (treatment against the global control group)."""


@dataclass(frozen=True)
class Window:
    """One decision's attribution window, as stored (and read back when it closes)."""

    decision_id: str
    customer: str
    decided_at: float
    group: str
    policy_id: str
    tier: str | None
    segment: str | None
    made: str | None
    """The first offer made (the one an order is the response to)."""
    held_out: str | None
    """The offer the holdout withheld (the decision's only would-be offer then)."""
    cost: float
    chances: dict[str, float]
    uplift: dict[str, float]
    features: list[float] | None
    orders: int = 0
    refunds: int = 0
    revenue: float = 0.0
    margin: float = 0.0

    @property
    def bought(self) -> bool:
        return self.orders > 0

    @property
    def profit(self) -> float:
        """What the decision brought: the attributed margin less the offer's cost."""
        return self.margin - self.cost

    def fields(self) -> dict[str, str]:
        """The hash fields the window is stored as (the counters start at 0)."""
        return {"decision_id": self.decision_id, "customer": self.customer,
                "decided_at": repr(self.decided_at), "group": self.group,
                "policy_id": self.policy_id, "tier": self.tier or "",
                "segment": self.segment or "", "made": self.made or "",
                "held_out": self.held_out or "", "cost": repr(self.cost),
                "chances": orjson.dumps(self.chances).decode(),
                "uplift": orjson.dumps(self.uplift).decode(),
                "features": orjson.dumps(self.features).decode(),
                "orders": "0", "refunds": "0", "revenue": "0", "margin": "0"}

    @classmethod
    def from_fields(cls, raw: Mapping[bytes | str, bytes | str]) -> Window:
        f = {(k.decode() if isinstance(k, bytes) else k):
             (v.decode() if isinstance(v, bytes) else v) for k, v in raw.items()}
        return cls(decision_id=f["decision_id"], customer=f["customer"],
                   decided_at=float(f["decided_at"]), group=f["group"],
                   policy_id=f["policy_id"], tier=f["tier"] or None,
                   segment=f["segment"] or None, made=f["made"] or None,
                   held_out=f["held_out"] or None, cost=float(f["cost"]),
                   chances=orjson.loads(f["chances"]), uplift=orjson.loads(f["uplift"]),
                   features=orjson.loads(f["features"]), orders=int(f.get("orders", 0)),
                   refunds=int(f.get("refunds", 0)),
                   revenue=float(f.get("revenue", 0.0)), margin=float(f.get("margin", 0.0)))


def opened(d: DecisionLogged) -> Window:
    """The window a logged decision opens."""
    made = next((c for c in d.candidates if c.made), None)
    held = next((c for c in d.candidates if c.held_out), None)
    return Window(decision_id=d.decision_id, customer=d.customer,
                  decided_at=d.decided_at.timestamp(), group=d.group,
                  policy_id=d.policy_id, tier=d.tier, segment=d.segment,
                  made=made.offer_id if made else None,
                  held_out=held.offer_id if held and made is None else None,
                  cost=sum(c.cost for c in d.candidates if c.made),
                  chances={c.offer_id: c.probability for c in d.candidates
                           if c.probability > 0},
                  uplift={c.offer_id: c.uplift for c in d.candidates if c.uplift is not None},
                  features=None if d.features is None else list(d.features))


def arm(w: Window) -> tuple[str, str] | None:
    """(offer, arm) of the window in the per-offer comparison: ``treated`` when the
    offer was made, ``held_out`` when the holdout withheld it; None otherwise."""
    if w.made is not None:
        return w.made, "treated"
    if w.held_out is not None:
        return w.held_out, "held_out"
    return None


def cuts(w: Window) -> list[str]:
    return ["all", f"tier:{w.tier or 'unknown'}", f"segment:{w.segment or 'unknown'}"]


def counters(w: Window) -> dict[str, float]:
    """What a closed window adds to the uplift report (see :mod:`.uplift_report`)."""
    out: dict[str, float] = {}
    rows = [(ANY, w.group)]
    found = arm(w)
    if found is not None:
        rows.append(found)
    for offer, which in rows:
        for cut in cuts(w):
            prefix = f"{offer}|{cut}|{which}|"
            for name, amount in (("n", 1.0), ("buyers", float(w.bought)),
                                 ("margin", w.margin), ("profit", w.profit),
                                 ("profit_sq", w.profit * w.profit)):
                out[prefix + name] = out.get(prefix + name, 0.0) + amount
    return out


def qini_row(w: Window) -> tuple[str, list[Any]] | None:
    """(offer, [hour, predicted uplift, treated, bought, profit]) for the offer's Qini
    curve, when the window compares the offer and its prediction was logged."""
    found = arm(w)
    if found is None or found[0] not in w.uplift:
        return None
    offer, which = found
    return offer, [int(w.decided_at // 3600), w.uplift[offer], int(which == "treated"),
                   int(w.bought), round(w.profit, 4)]


def response_of(w: Window) -> Response | None:
    """The learners' view of a closed window (None without features)."""
    if w.features is None:
        return None
    return Response(x=np.asarray(w.features, dtype=float), made=w.made,
                    chances=dict(w.chances) if w.group == "treatment" else {},
                    bought=w.bought, margin=w.margin)
