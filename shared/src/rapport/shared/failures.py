"""Which failures are the infrastructure's (retried until they pass) and which a
record's own (set aside): one rule for every consumer."""

from __future__ import annotations

import redis.exceptions
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    MessageSizeTooLargeError,
)

# Failures of the infrastructure, not of a record: retried until they pass. Redis being
# read-only (a failover) or out of memory is the server's state too.
TRANSIENT: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError, redis.exceptions.OutOfMemoryError,
    KafkaError, ConnectionError, TimeoutError)
# Kafka errors a retry cannot cure: a rebalance took the partitions (their new owner
# redelivers), or a dead letter too large for the topic (resent without the record).
NOT_TRANSIENT = (CommitFailedError, IllegalStateError, MessageSizeTooLargeError)


def transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT) and not isinstance(exc, NOT_TRANSIENT)
