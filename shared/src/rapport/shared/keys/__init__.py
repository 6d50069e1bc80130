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

The profile service's, identity's and ingest's keys are here; demand's, next-action's
and scoring's in :mod:`.demand`, :mod:`.decisions` and :mod:`.scoring`, all read as
``keys.<name>``.
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


from .decisions import (  # noqa: E402, F401 (re-exported: every key is keys.<name>)
    attribution_decisions,
    attribution_fact_seen,
    attribution_open,
    attribution_order,
    attribution_pending,
    attribution_slot,
    attribution_window,
    contact_outcome_seen,
    contacts,
    contacts_slot,
    decision,
    decision_outcomes,
    decision_policies,
    decisions_of,
    learner_model,
    offer_budget,
    offer_catalog,
    offer_report,
    offer_report_hours,
    outcome_seen,
    outcomes_due,
    response_seen,
    uplift_model,
    uplift_report,
    uplift_report_hours,
    uplift_rows,
)
from .demand import (  # noqa: E402, F401 (re-exported: every key is keys.<name>)
    demand_active,
    demand_alert,
    demand_alerts,
    demand_audience,
    demand_clocks,
    demand_closed,
    demand_closer_lock,
    demand_counted,
    demand_counts,
    demand_detectors,
    demand_first,
    demand_forecast_quality,
    demand_incident,
    demand_incidents,
    demand_late,
    demand_open_sketches,
    demand_reach,
    demand_reach_names,
    demand_rollup_sketches,
    demand_series,
)
from .scoring import (  # noqa: E402, F401 (re-exported: every key is keys.<name>)
    clv_current,
    clv_fit_lock,
    clv_model,
    clv_version_counter,
    clv_versions,
    population_points,
    population_sketches,
    population_slot,
)
