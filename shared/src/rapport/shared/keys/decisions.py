"""Next-action's keys: catalog, policies, learners, outcomes and reports, decisions,
contact histories, attribution windows and budgets."""

from __future__ import annotations

from . import LEARNER, PREFIX, tagged


def offer_catalog() -> str:
    return f"{PREFIX}:offers:catalog"


def decision_policies() -> str:
    """The decision policies and the traffic split (JSON, next-action's PUT /v1/policies)."""
    return f"{PREFIX}:next-action:policies"


def learner_model() -> str:
    """Hash: the response learner's weights, one field per offer plus the shared ones
    and ``version`` (see rapport.next_action.learner)."""
    return f"{tagged(LEARNER)}:next-action:learner"


def decision_outcomes(decision_id: str) -> str:
    """Hash ``<action_id>`` -> its final outcome, and ``profit``: what each action of a
    logged decision came to (read by off-policy evaluation and the reports)."""
    return f"{tagged(LEARNER)}:decision-outcomes:{decision_id}"


def outcomes_due() -> str:
    """Sorted set ``decision_id|action_id`` by the time (epoch s) it counts as ignored
    if nothing final has been heard of it by then."""
    return f"{tagged(LEARNER)}:next-action:outcomes-due"


def offer_report(hour: int) -> str:
    """Hash of the offers report's counters for one hour (epoch hours), fields
    ``<offer>|<segment>|<tier>|<counter>`` and ``policy|<policy>|<counter>``."""
    return f"{tagged(LEARNER)}:next-action:report:{hour}"


def offer_report_hours() -> str:
    """Sorted set of the hours that have report counters (score = hour)."""
    return f"{tagged(LEARNER)}:next-action:report-hours"


def outcome_seen(decision_id: str, action_id: str, outcome: str) -> str:
    """Marker that one outcome of one action was counted (dedup across paths)."""
    return f"{tagged(LEARNER)}:outcome:{decision_id}:{action_id}:{outcome}"


def decision(decision_id: str) -> str:
    return f"{PREFIX}:decision:{decision_id}"


def decisions_of(fingerprint: str) -> str:
    """Set of the decision ids made for a customer, by the keyed fingerprint of the
    customer id (``Fingerprints.profile``): what erasure deletes."""
    return f"{PREFIX}:decisions-of:{fingerprint}"


def contacts(fingerprint: str) -> str:
    """Hash of one person's contact history (offers made, rejected, accepted, by time),
    by the keyed fingerprint of their profile id: what contact limits count and erasure
    deletes (written by next-action)."""
    return f"{tagged(contacts_slot(fingerprint))}:contacts:{fingerprint}"


def attribution_slot(fingerprint: str) -> str:
    """One person's open attribution windows, their decisions by time and the once-
    markers of their orders share a slot (one script attributes an order)."""
    return f"a:{fingerprint}"


def attribution_decisions(fingerprint: str) -> str:
    """Sorted set of a person's recent decision ids by decision time (epoch s): the most
    recent one before an order, within the window, gets it."""
    return f"{tagged(attribution_slot(fingerprint))}:attribution:decisions:{fingerprint}"


def attribution_window(fingerprint: str, decision_id: str) -> str:
    """Hash: one decision's attribution window (what it made or held out, its features,
    and the orders and margin attributed to it so far; ``closing`` once it is closed)."""
    return f"{tagged(attribution_slot(fingerprint))}:attribution:window:{decision_id}"


def attribution_fact_seen(fingerprint: str, message_id: str) -> str:
    """The decision an order (or refund) message was attributed to ('' for none): its
    once-marker, and for an order what its refunds are attributed to."""
    return f"{tagged(attribution_slot(fingerprint))}:attribution:fact:{message_id}"


def attribution_order(fingerprint: str, order_id: str) -> str:
    """The decision an order id was attributed to (its refunds follow it)."""
    return f"{tagged(attribution_slot(fingerprint))}:attribution:order:{order_id}"


def attribution_pending(fingerprint: str) -> str:
    """Sorted set of a person's orders heard before any decision that could take them,
    by order time: the decision log can trail the order facts (two topics), so a decision
    logged late takes those within its window when it opens."""
    return f"{tagged(attribution_slot(fingerprint))}:attribution:pending:{fingerprint}"


def attribution_open() -> str:
    """Sorted set ``<fingerprint>|<decision_id>`` by when its window closes (epoch s)."""
    return f"{tagged(LEARNER)}:attribution:open"


def uplift_model(name: str) -> str:
    """Hash {``state``: one uplift learner's bytes (rapport.next_action.uplift),
    ``version``: how many closed windows it learnt from}."""
    return f"{tagged(LEARNER)}:uplift:model:{name}"


def response_seen(decision_id: str) -> str:
    """Marker that a decision's closed window was learnt from and counted once."""
    return f"{tagged(LEARNER)}:uplift:seen:{decision_id}"


def uplift_report(hour: int) -> str:
    """Hash of the uplift report's counters for one hour of decisions (epoch hours):
    ``<offer>|<cut>|<arm>|<counter>`` (see rapport.next_action.uplift_report)."""
    return f"{tagged(LEARNER)}:uplift:report:{hour}"


def uplift_report_hours() -> str:
    """Sorted set of the hours with uplift report counters (score = hour)."""
    return f"{tagged(LEARNER)}:uplift:report-hours"


def uplift_rows(offer_id: str) -> str:
    """List of the latest closed windows of one offer as JSON rows (decision hour, the
    model's predicted uplift, treated or held out, bought, margin): the Qini curves."""
    return f"{tagged(LEARNER)}:uplift:rows:{offer_id}"


def contacts_slot(fingerprint: str) -> str:
    """One person's contact history and its once-markers share a slot."""
    return f"c:{fingerprint}"


def contact_outcome_seen(fingerprint: str, decision_id: str, action_id: str,
                         outcome: str) -> str:
    """Marker that one outcome was counted into a person's contact history (in the
    history's slot, so the script checks and counts in one step)."""
    return f"{tagged(contacts_slot(fingerprint))}:outcome:{decision_id}:{action_id}:{outcome}"


def offer_budget(offer_id: str, counts: str, day: int) -> str:
    """How many of an offer were counted (``made`` or ``accepted``) on one UTC day (days
    since the epoch): what daily budgets pace by (written by next-action, with a TTL)."""
    return f"{PREFIX}:offers:budget:{offer_id}:{counts}:{day}"
