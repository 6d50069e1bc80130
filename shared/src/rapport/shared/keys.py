"""Every Redis key of the system, named once, with the hash tag that places it on a
Redis Cluster: everything one atomic write touches (a transaction, a script) shares
one tag, so it lives in one slot (``{...}`` below).

- Per profile partition (:class:`rapport.shared.layout.ProfileLayout`): a profile, its
  timeline and hand-over marker, that partition's segment members and stage 2's
  offsets and owner epoch: one stage-2 batch of one partition writes one slot, and
  profiles spread over the masters with the partitions.
- ``{ids}``: the identity graph (one script resolves a touchpoint atomically against
  it), erasure tombstones and stage 1's offsets and resolution logs.
- ``{demand}``, ``{ingest}``, ``{vault}``, ``{learner}``, ``{models}``: each service's
  aggregate state, written by transactions spanning its keys.
- Per person (contacts) and per partition (population sketches): their own tags.
"""

from __future__ import annotations

PREFIX = "rapport"
IDS = "ids"
DEMAND = "demand"
INGEST = "ingest"
VAULT = "vault"
LEARNER = "learner"
MODELS = "models"


def tagged(slot: str) -> str:
    """The prefix of every key in ``slot`` (a hash tag: one Redis Cluster slot)."""
    return f"{PREFIX}:{{{slot}}}"


def layout() -> str:
    """JSON of the profile key layout in use (``ProfileLayout``): how many partitions
    profiles are spread by, so every reader finds a profile's slot."""
    return f"{PREFIX}:layout"


def profile(slot: str, customer_id: str) -> str:
    """JSON of the customer's profile (written by the profile service), in its
    partition's slot (``ProfileLayout.slot``)."""
    return f"{tagged(slot)}:profile:{customer_id}"


def identity(kind: str, value: str) -> str:
    """Identifier -> customer id (e.g. kind ``anonymous_id``)."""
    return f"{tagged(IDS)}:identity:{kind}:{value}"


def applied_offset(group: str, topic: str, partition: int, slot: str) -> str:
    """Highest Kafka offset whose effect is stored, per consumer group and partition.

    Written in the same transaction as the state it protects, so redelivered
    messages are recognised and skipped: exactly once in effect.
    """
    return f"{tagged(slot)}:offset:{group}:{topic}:{partition}"


def owner_epoch(group: str, topic: str, partition: int, slot: str) -> str:
    """Counter bumped by each new owner of a partition: a batch is stored only while
    the epoch it was read under is still the latest (:mod:`rapport.shared.fencing`)."""
    return f"{tagged(slot)}:offset:{group}:{topic}:{partition}:epoch"


def resolve_log(group: str, topic: str, partition: int) -> str:
    """Hash offset -> profile id of the records of a partition resolved but not yet committed."""
    return f"{tagged(IDS)}:resolve-log:{group}:{topic}:{partition}"


def profile_identities(customer_id: str) -> str:
    """Set of the identity keys that point at a profile (moved whole on a merge)."""
    return f"{tagged(IDS)}:profile-identities:{customer_id}"


def merged_into(customer_id: str) -> str:
    """Where a merged-away profile went: its late events are forwarded there."""
    return f"{tagged(IDS)}:merged-into:{customer_id}"


def handed_over(slot: str, customer_id: str) -> str:
    """The profile a merged-away profile's state was handed to: written by the fold in
    the profile's slot, then copied into ``{ids}`` for stage 1's routing."""
    return f"{tagged(slot)}:handed-over:{customer_id}"


def identity_joins(fingerprint: str) -> str:
    """How many profiles an identifier value has joined (the over-merge guard), by the
    identifier's keyed fingerprint (:class:`rapport.shared.privacy.Fingerprints`)."""
    return f"{tagged(IDS)}:identity-joins:{fingerprint}"


def merge_outbox() -> str:
    """Merges decided in Redis whose merge step is not yet on Kafka."""
    return f"{tagged(IDS)}:identity:outbox"


def erased_identity(fingerprint: str) -> str:
    """Time (ms) an identifier was erased; touchpoints received before it are dropped."""
    return f"{tagged(IDS)}:erased:{fingerprint}"


def erased_profile(fingerprint: str) -> str:
    """Time (ms) a profile was erased, by the keyed fingerprint of its id
    (``Fingerprints.profile``): readers that lag (scoring) write nothing older back."""
    return f"{tagged(IDS)}:erased-profile:{fingerprint}"


def vault_key(kid: str) -> str:
    """A person's data key (32 raw bytes) for crypto-shredding (:mod:`rapport.shared.vault`),
    by keyed fingerprint. Deleting it is the erasure of everything sealed under it, so it is
    never rebuilt from Kafka and never among the patterns a rebuild forgets."""
    return f"{tagged(VAULT)}:vault:{kid}"


def timeline(slot: str, customer_id: str) -> str:
    """Sorted set of recent touchpoints scored by event time (the profile's slot)."""
    return f"{tagged(slot)}:timeline:{customer_id}"


def segment_members(slot: str, segment: str) -> str:
    """Set of one partition's members of a segment (a segment is the union over the
    partitions' slots)."""
    return f"{tagged(slot)}:segment:{segment}"


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


def ingest_seen(source: str, day: int, shard: int) -> str:
    """One small hash of message fingerprints seen by ingest for a source on a UTC day.

    Sharded so each hash stays in Redis's compact listpack encoding.
    """
    return f"{tagged(INGEST)}:ingest:seen:{source}:{day}:{shard}"


def profile_owned_patterns(group: str) -> list[str]:
    """Every key the profile service writes, as SCAN patterns (what a rebuild forgets)."""
    return [f"{PREFIX}:{{*}}:{kind}:*" for kind in (
        "profile", "identity", "profile-identities", "merged-into", "handed-over",
        "identity-joins",
        "erased", "erased-profile", "timeline", "segment", "demand",
        f"offset:{group}", f"resolve-log:{group}")] + [layout()]


# --- Demand (written by the profile service: stage 2 and its closer) -----------------

def demand_counts(width: int, start: int) -> str:
    """Hash series field -> exact amount (products: the closer's estimates) of one
    bucket of ``width`` seconds starting at epoch second ``start``."""
    return f"{tagged(DEMAND)}:demand:counts:{width}:{start}"


def demand_open_sketches(start: int) -> str:
    """Hash ``partition|metric`` -> product sketch of a base bucket not yet closed."""
    return f"{tagged(DEMAND)}:demand:open-sketches:{start}"


def demand_rollup_sketches(width: int, start: int) -> str:
    """Hash metric -> product sketch of an hour or day (merged by the closer)."""
    return f"{tagged(DEMAND)}:demand:sketches:{width}:{start}"


def demand_clocks() -> str:
    """Sorted set partition -> latest event time folded (epoch seconds)."""
    return f"{tagged(DEMAND)}:demand:clocks"


def demand_first() -> str:
    """Sorted set partition -> earliest base bucket counted (where closing starts)."""
    return f"{tagged(DEMAND)}:demand:first"


def demand_active() -> str:
    """Sorted set partition -> wall time it last folded data (idle partitions)."""
    return f"{tagged(DEMAND)}:demand:active"


def demand_series() -> str:
    """Set of the coarse series fields seen (what the closer tracks)."""
    return f"{tagged(DEMAND)}:demand:series"


def demand_late() -> str:
    """Hash ``events`` and metric -> what came too late to be counted."""
    return f"{tagged(DEMAND)}:demand:late"


def demand_closed() -> str:
    """Start of the last base bucket closed (its detectors fed)."""
    return f"{tagged(DEMAND)}:demand:closed"


def demand_detectors() -> str:
    """Hash series field -> detector state (JSON)."""
    return f"{tagged(DEMAND)}:demand:detectors"


def demand_forecast_quality() -> str:
    """Hash series field -> how its forecasts have done (JSON, beside its detector)."""
    return f"{tagged(DEMAND)}:demand:forecast-quality"


def demand_alerts() -> str:
    """Hash alert id -> open spike alert (JSON)."""
    return f"{tagged(DEMAND)}:demand:alerts"


def demand_alert(alert_id: str) -> str:
    """A closed spike alert (JSON), kept for a while."""
    return f"{tagged(DEMAND)}:demand:alert:{alert_id}"


def demand_incidents() -> str:
    """Hash incident id -> open demand incident (JSON): correlated alerts grouped."""
    return f"{tagged(DEMAND)}:demand:incidents"


def demand_incident(incident_id: str) -> str:
    """An ended demand incident (JSON), kept for a while."""
    return f"{tagged(DEMAND)}:demand:incident:{incident_id}"


def demand_audience(category: str) -> str:
    """Sorted set customer id -> affinity rank score: the top customers of a category."""
    return f"{tagged(DEMAND)}:demand:audience:{category}"


def demand_reach(name: str) -> str:
    """Sorted set customer id -> response score (expected 90-day value, then P(alive), as
    of the profile's last change) of the top customers of one region, channel or
    segment, or of everyone (``name`` is ``<dimension>:<value>``)."""
    return f"{tagged(DEMAND)}:demand:reach:{name}"


def demand_reach_names() -> str:
    """Set of the reach sets' names in use (what a merge or an erasure leaves)."""
    return f"{tagged(DEMAND)}:demand:reach-names"


def demand_counted() -> str:
    """Hash partition member -> highest record offset of the re-keyed stream whose demand
    facts are counted (what makes a republished fact count once)."""
    return f"{tagged(DEMAND)}:demand:counted"


def demand_closer_lock() -> str:
    return f"{tagged(DEMAND)}:demand:closer-lock"


# --- Scoring (written by the scoring service; read through rapport.shared.customers) --

def clv_model(version: str) -> str:
    """JSON of one fitted lifetime-value model (kept: ops can see past fits)."""
    return f"{tagged(MODELS)}:models:clv:{version}"


def clv_current() -> str:
    """The version of the lifetime-value model in use."""
    return f"{tagged(MODELS)}:models:clv-current"


def clv_version_counter() -> str:
    return f"{tagged(MODELS)}:models:clv-counter"


def clv_versions() -> str:
    """Sorted set of the fitted versions by fit time (newest last)."""
    return f"{tagged(MODELS)}:models:clv-versions"


def clv_fit_lock() -> str:
    """Held while one scoring process fits, so replicas do not fit at once."""
    return f"{tagged(MODELS)}:models:clv-fit-lock"


def population_sketches(partition: int) -> str:
    """Hash ``metric|added`` / ``metric|retracted`` -> KLL sketch of the values of one
    profile-updates partition's customers (see rapport.shared.scores.population)."""
    return f"{tagged(population_slot(partition))}:population:sketches:{partition}"


def population_points(partition: int) -> str:
    """Hash customer fingerprint -> the customer's point in the sketches (so it can be
    retracted when it changes, or when they are erased or merged away)."""
    return f"{tagged(population_slot(partition))}:population:points:{partition}"


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


def population_slot(partition: int) -> str:
    """A profile-updates partition's population sketches, points and offset."""
    return f"pop{partition}"


def offer_budget(offer_id: str, counts: str, day: int) -> str:
    """How many of an offer were counted (``made`` or ``accepted``) on one UTC day (days
    since the epoch): what daily budgets pace by (written by next-action, with a TTL)."""
    return f"{PREFIX}:offers:budget:{offer_id}:{counts}:{day}"
