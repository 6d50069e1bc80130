"""What the ops dashboard shows, gathered from the sources themselves: Kafka's own
offsets (admin client: each group's committed offsets, each partition's end offset),
the dead-letter topics' latest records, and every service's /metrics. One collector
per console process samples them every few seconds and keeps the last 15 minutes; no
second bookkeeping of the events."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from rapport.shared import topics

from . import prom_text

log = structlog.get_logger(__name__)
DEAD_LETTER_TOPICS = (topics.DEAD_LETTER.name, topics.STREAM_DEAD_LETTER.name)
_LETTER_FIELDS = ("source", "stage", "topic", "index", "messageId", "at", "received_at")


@dataclass
class Sample:
    at: float
    ends: dict[tuple[str, int], int]
    committed: dict[str, dict[tuple[str, int], int]]
    metrics: prom_text.Samples


@dataclass
class Collected:
    samples: deque[Sample] = field(default_factory=deque)
    letters: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def letter_summary(raw: bytes | None, topic: str, offset: int) -> dict[str, Any]:
    """A dead letter as the dashboard lists it: where and why, never its message (which
    may hold personal data, sealed or not)."""
    try:
        body = orjson.loads(raw or b"null")
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        return {"topic": topic, "offset": offset, "reason": "not a JSON dead letter"}
    reason = body.get("reason")
    if not reason and isinstance(body.get("errors"), list):
        reason = "; ".join(str(e) for e in body["errors"][:3])
    out = {k: body[k] for k in _LETTER_FIELDS if k in body and k != "topic"}
    return {"topic": topic, "offset": offset, "reason": str(reason or "no reason given")[:300],
            **out}


class Collector:
    def __init__(self, bootstrap: str, metrics_urls: dict[str, str], every_s: float,
                 window_s: float) -> None:
        self._bootstrap = bootstrap
        self._urls = metrics_urls
        self.every_s = every_s
        self._window = window_s
        self.data = Collected()
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap,
                                          client_id="rapport-console-ops")
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                          enable_auto_commit=False,
                                          client_id="rapport-console-offsets")
        self._http = httpx.AsyncClient(timeout=2.0)
        self._partitions: list[TopicPartition] = []
        self._letter_ends: dict[TopicPartition, int] = {}
        self.changed = asyncio.Event()

    async def start(self) -> None:
        await self._admin.start()
        await self._consumer.start()

    async def close(self) -> None:
        for closing in (self._consumer.stop(), self._admin.close(), self._http.aclose()):
            with contextlib.suppress(Exception):
                await closing

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.sample()
            except Exception as exc:  # a source away: show it, keep sampling
                self.data.errors["kafka"] = type(exc).__name__
                log.warning("ops_sample_failed", error=type(exc).__name__)
            await asyncio.sleep(max(0.1, self.every_s - (time.monotonic() - started)))

    async def sample(self) -> None:
        if not self._partitions:
            described = await self._admin.describe_topics([t.name for t in topics.ALL_TOPICS])
            self._partitions = [TopicPartition(t["topic"], p["partition"]) for t in described
                                if t["error_code"] == 0 for p in t["partitions"]]
        ends_raw, committed, metrics = await asyncio.gather(
            self._consumer.end_offsets(self._partitions), self._committed(), self._scrape())
        ends = {(tp.topic, tp.partition): off for tp, off in ends_raw.items()}
        now = time.time()
        self.data.samples.append(Sample(now, ends, committed, metrics))
        while self.data.samples and self.data.samples[0].at < now - self._window:
            self.data.samples.popleft()
        self.data.errors.pop("kafka", None)
        await self._read_letters(ends_raw)
        self.changed.set()
        self.changed = asyncio.Event()

    async def _committed(self) -> dict[str, dict[tuple[str, int], int]]:
        groups = [g[0] for g in await self._admin.list_consumer_groups()
                  if g[0].startswith("rapport")]
        found = await asyncio.gather(*(self._admin.list_consumer_group_offsets(g)
                                       for g in groups), return_exceptions=True)
        out: dict[str, dict[tuple[str, int], int]] = {}
        for group, offsets in zip(groups, found, strict=True):
            if isinstance(offsets, BaseException):
                continue
            out[group] = {(tp.topic, tp.partition): meta.offset
                          for tp, meta in offsets.items() if meta.offset >= 0}
        return out

    async def _scrape(self) -> prom_text.Samples:
        async def one(name: str, url: str) -> prom_text.Samples:
            try:
                answer = await self._http.get(f"{url}/metrics")
                answer.raise_for_status()
                self.data.errors.pop(name, None)
                return prom_text.parse(answer.text)
            except (httpx.HTTPError, ValueError) as exc:
                self.data.errors[name] = type(exc).__name__
                return {}

        readings = await asyncio.gather(*(one(n, u) for n, u in self._urls.items()))
        return prom_text.merge(readings)

    async def _read_letters(self, ends: dict[TopicPartition, int]) -> None:
        wanted = [tp for tp in ends if tp.topic in DEAD_LETTER_TOPICS]
        fresh = [tp for tp in wanted if ends[tp] != self._letter_ends.get(tp)]
        if not fresh:
            return
        self._consumer.assign(wanted)
        letters: list[dict[str, Any]] = []
        for tp in wanted:
            self._letter_ends[tp] = ends[tp]
            if ends[tp] == 0:
                continue
            self._consumer.seek(tp, max(0, ends[tp] - 5))
            got = await self._consumer.getmany(tp, timeout_ms=1000)
            letters += [letter_summary(r.value, tp.topic, r.offset)
                        for r in got.get(tp, [])]
        self.data.letters = sorted(letters, key=lambda x: str(x.get("at") or x.get(
            "received_at") or ""), reverse=True)[:8]
