"""Every Kafka topic of the system, named once.

The project creates these explicitly (``rapport topics``, the stack and the
test setup); brokers run with ``auto.create.topics.enable=false``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False
    config: dict[str, str] = field(default_factory=dict)

    def topic_config(self) -> dict[str, str]:
        cfg = {"cleanup.policy": "compact" if self.compacted else "delete"}
        cfg.update(self.config)
        return cfg


TOUCHPOINTS = TopicSpec("rapport.touchpoints.v1", partitions=8,
                        config={"retention.ms": "-1"})
"""Validated canonical touchpoints, keyed by customer identifier. Kept forever: profiles
are rebuilt from it (erased people are skipped by the erasure log)."""

RESOLVED = TopicSpec("rapport.touchpoints.resolved.v1", partitions=8)
"""Touchpoints and merge steps re-keyed by the resolved profile id: the partition of a
profile id owns that person's state, so one person's updates never race."""

IDENTITY_EVENTS = TopicSpec("rapport.identity-events.v1", partitions=8)
"""Profile merges (with their cause) and links refused by the over-merge guard."""

ERASURES = TopicSpec("rapport.erasures.v1", partitions=1, compacted=True)
"""Erased identifiers (fingerprints, no personal data) with the time of erasure; replayed
into Redis before any rebuild so erased people never come back."""

DEMAND_FACTS = TopicSpec("rapport.demand-facts.v1", partitions=8)
"""What each stage-2 batch applied that demand counts (touchpoints' contributions,
audience changes), keyed by the re-keyed stream's partition: demand's own consumer
group counts it, off the profile path."""

SEGMENT_EVENTS = TopicSpec("rapport.segment-events.v1", partitions=8)
"""Customers entering and leaving segments, keyed by profile id."""

DEAD_LETTER = TopicSpec("rapport.touchpoints.dead-letter.v1", partitions=1)
"""Rejected messages with the reasons, for the ops dashboard."""

STREAM_DEAD_LETTER = TopicSpec("rapport.stream.dead-letter.v1", partitions=1)
"""Records a stream stage or consumer could not apply (with the stage, the source topic,
partition and offset, and the reason); the rest of their batch went on without them."""

PROFILE_UPDATES = TopicSpec("rapport.profile-updates.v1", partitions=8, compacted=True)
"""Latest profile per customer id (compacted); feed for scoring and agent screens."""

OUTCOMES = TopicSpec("rapport.outcomes.v1", partitions=8)
"""Offer outcomes (viewed, accepted, rejected, ignored), keyed by decision id."""

DECISIONS = TopicSpec("rapport.decisions.v1", partitions=8)
"""The decision log: every decision with the facts and model it used, its candidates'
propensities and exact probabilities, and what it made (keyed by decision id; what
off-policy evaluation and the reports read). Customers appear only by fingerprint."""

ORDER_FACTS = TopicSpec("rapport.order-facts.v1", partitions=8)
"""Orders and refunds as the profile service folded them (once per message), keyed by
the keyed fingerprint of the profile id: what next-action attributes to decisions. No
personal data: the customer appears only by fingerprint, amounts and order ids only."""

DEMAND_ALERTS = TopicSpec("rapport.demand-alerts.v1", partitions=1)
"""Demand spikes opening and closing, keyed by spike id (one partition: in order)."""

PRODUCER_PERF = TopicSpec("rapport.bench.producer-perf.v1", partitions=8)
"""Scratch topic for Kafka's own ProducerPerformance in ``make bench`` (bench stack only)."""

def facts_beside(resolved: TopicSpec) -> TopicSpec:
    """The demand facts topic of a re-keyed stream of one's own (tests, benches)."""
    return TopicSpec(f"{resolved.name}.facts", partitions=resolved.partitions)


ALL_TOPICS: tuple[TopicSpec, ...] = (TOUCHPOINTS, DEAD_LETTER, RESOLVED, IDENTITY_EVENTS,
                                     ERASURES, PROFILE_UPDATES, SEGMENT_EVENTS, OUTCOMES,
                                     DECISIONS, DEMAND_FACTS, ORDER_FACTS,
                                     DEMAND_ALERTS, STREAM_DEAD_LETTER)
