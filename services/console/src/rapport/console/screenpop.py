"""Screen-pop: a customer who starts a call appears on every open agent screen.

The profile-updates topic says, per customer, that their profile changed; its metrics
(never sealed) count the calls. Each console process reads every partition from the
end with no consumer group (every replica must see every update, and nothing needs
committing: a screen only cares about calls from now on), so
:class:`rapport.shared.batching.BatchLoop`, which is built for a group's committed
progress, does not fit here. A call's reason is then read from the profile API's
timeline with the agent's own key."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from datetime import datetime

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from rapport.shared import topics
from rapport.shared.kafka import topic_partitions

log = structlog.get_logger(__name__)


def calls_rang(seen: dict[str, int], records: Iterable[tuple[bytes | None, bytes | None]],
               now: float, window_s: float) -> list[str]:
    """Customer ids whose profile update shows a new call: more calls than last seen,
    or, the first time a customer is seen, a call within ``window_s`` of ``now``.
    ``seen`` (customer id -> calls) is updated."""
    rang: list[str] = []
    for key, value in records:
        if key is None or value is None:
            continue
        try:
            body = orjson.loads(value)
            metrics = body.get("metrics") or {}
            calls = int(metrics.get("calls") or 0)
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            continue
        pid = key.decode(errors="replace")
        before = seen.get(pid)
        seen[pid] = calls
        if before is None:
            last = _epoch(metrics.get("last_seen"))
            if calls > 0 and last is not None and now - last <= window_s:
                rang.append(pid)
        elif calls > before:
            rang.append(pid)
    return list(dict.fromkeys(rang))


def _epoch(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def newest_call(timeline: list[dict[str, object]], now: float, window_s: float
                ) -> dict[str, object] | None:
    """The newest ``Call Started`` of a timeline (newest first) within the window."""
    for tp in timeline:
        if tp.get("event") == "Call Started":
            at = _epoch(tp.get("timestamp"))
            return tp if at is not None and now - at <= window_s else None
    return None


class ScreenPop:
    """Fans the customer ids of new calls out to every open agent screen's queue."""

    def __init__(self, bootstrap: str, window_s: float) -> None:
        self.window_s = window_s
        self._bootstrap = bootstrap
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                          enable_auto_commit=False,
                                          client_id="rapport-console-screen-pop")
        self._seen: dict[str, int] = {}
        self._screens: set[asyncio.Queue[str]] = set()
        self.ready = asyncio.Event()

    def subscribe(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=100)
        self._screens.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self._screens.discard(queue)

    async def run(self) -> None:
        await self._consumer.start()
        try:
            name = topics.PROFILE_UPDATES.name
            parts = (await topic_partitions(self._bootstrap, [name])).get(name)
            while not parts:
                await asyncio.sleep(1)
                parts = (await topic_partitions(self._bootstrap, [name])).get(name)
            tps = [TopicPartition(topics.PROFILE_UPDATES.name, p) for p in sorted(parts)]
            self._consumer.assign(tps)
            await self._consumer.seek_to_end(*tps)
            for tp in tps:  # resolve the end offsets now, not at the first record
                await self._consumer.position(tp)
            self.ready.set()
            while True:
                polled = await self._consumer.getmany(timeout_ms=200, max_records=2000)
                records = [(r.key, r.value) for batch in polled.values() for r in batch]
                for pid in calls_rang(self._seen, records, time.time(),
                                      self.window_s):
                    self._fan_out(pid)
                if len(self._seen) > 200_000:  # bounded memory: forget, and start over
                    self._seen.clear()
        finally:
            with contextlib.suppress(Exception):
                await self._consumer.stop()

    def _fan_out(self, pid: str) -> None:
        for queue in list(self._screens):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(pid)

