"""The load generator of ``rapport bench next-action``, in a process of its own (so its
CPU is not the service's, and the service's is not its), on keep-alive HTTP/1.1
connections written by hand (cheap enough not to be the limit), and the bare FastAPI "hello"
service it also drives: the HTTP floor on this machine.

Open loop: requests due at Poisson arrivals of a fixed rate whatever the answers do,
latency counted from when each was due, so a slow answer or a queue in front of the
service counts against every request it delays (no coordinated omission). Closed loop:
a fixed number of requests always in flight, on keep-alive connections: the
throughput at saturation."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
from dataclasses import dataclass, field

import httpx

from rapport.scoring.bench_reads import pct

MAX_IN_FLIGHT = 256
OPEN_POOL = 32
"""Connections the open loop sends on (a request due while all are busy waits)."""
HEADERS = {"Authorization": "Bearer dev-channel", "Content-Type": "application/json"}


@dataclass
class Load:
    latencies_ms: list[float]
    errors: int
    seconds: float
    late_ms: float = 0.0
    """Open loop: how far behind its schedule the client fell at worst (its own limit)."""
    cpu_s: float = 0.0
    """CPU the load generator spent (user + system)."""
    statuses: dict[int, int] = field(default_factory=dict)
    """Answers by HTTP status (0: no answer); requests never sent are only in errors."""

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return pct(self.latencies_ms, q)

    @property
    def max_ms(self) -> float:
        return max(self.latencies_ms, default=float("nan"))


@dataclass(frozen=True)
class Job:
    url: str
    path: str
    bodies: list[bytes]
    seconds: float
    rate: float = 0.0
    """Open loop at this rate (requests/s); 0: closed loop."""
    concurrency: int = 8
    """Closed loop: the requests always in flight (each on its connection)."""
    seed: int = 1


class Connection:
    """One keep-alive HTTP/1.1 connection, by hand: a few microseconds of client CPU per
    request (httpx costs about a millisecond, which on two shared cores would be the
    load generator measuring itself)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self._r: asyncio.StreamReader | None = None
        self._w: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        """The answer's status (0: no answer; the connection is opened again)."""
        try:
            if self._w is None:
                self._r, self._w = await asyncio.open_connection(self.host, self.port)
            head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                    f"Authorization: {HEADERS['Authorization']}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
            self._w.write(head.encode() + body)
            assert self._r is not None
            raw = await asyncio.wait_for(self._r.readuntil(b"\r\n\r\n"), 10)
            lines = raw.decode("latin-1").split("\r\n")
            length = next(int(h.split(":", 1)[1]) for h in lines
                          if h.lower().startswith("content-length:"))
            await self._r.readexactly(length)
            return int(lines[0].split(" ", 2)[1])
        except (OSError, asyncio.IncompleteReadError, TimeoutError,
                asyncio.LimitOverrunError, StopIteration, ValueError):
            self.close()
            return 0

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
        self._r = self._w = None


async def open_loop(job: Job) -> Load:
    """A pool of connections serves a queue the schedule fills: a request waits in it
    when all are busy, and its wait counts in its latency."""
    rng = random.Random(job.seed)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    late, errors = 0.0, 0
    queue: asyncio.Queue[tuple[bytes, float] | None] = asyncio.Queue()

    async def worker() -> None:
        conn = Connection(job.url)
        while (item := await queue.get()) is not None:
            status = await conn.post(job.path, item[0])
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                latencies.append((time.perf_counter() - item[1]) * 1000)
        conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(OPEN_POOL)]
    start = time.perf_counter() + 0.05
    due, i = start, 0
    while due < start + job.seconds:
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        else:  # behind: the client is the limit
            late = max(late, -wait * 1000)
        if queue.qsize() >= MAX_IN_FLIGHT:
            errors += 1
        else:
            queue.put_nowait((job.bodies[i % len(job.bodies)], due))
        i += 1
        due += rng.expovariate(job.rate)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    errors += sum(n for status, n in statuses.items() if status != 200)
    return Load(latencies, errors, job.seconds, late, statuses=statuses)


async def closed_loop(job: Job) -> Load:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    end = time.perf_counter() + job.seconds

    async def worker(k: int) -> None:
        conn, i = Connection(job.url), k
        while (began := time.perf_counter()) < end:
            status = await conn.post(job.path, job.bodies[i % len(job.bodies)])
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                latencies.append((time.perf_counter() - began) * 1000)
            i += job.concurrency
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(job.concurrency)))
    errors = sum(n for status, n in statuses.items() if status != 200)
    return Load(latencies, errors, time.perf_counter() - start, statuses=statuses)


def _child(job: Job, out: multiprocessing.Queue) -> None:
    try:
        began = time.process_time()
        load = asyncio.run(open_loop(job) if job.rate else closed_loop(job))
        load.cpu_s = time.process_time() - began
        out.put(load)
    except Exception as exc:  # reported by the parent
        out.put(exc)


def drive(job: Job) -> Load:
    """Run one load from a fresh load-generator process; its figures."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(job, queue), name="rapport-bench-load")
    proc.start()
    try:
        result = queue.get(timeout=job.seconds + 120)
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    if isinstance(result, Exception):
        raise RuntimeError(f"the load generator failed: {result!r}")
    return result


# --- the HTTP floor ---------------------------------------------------------------------

def _serve_hello(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    # As the services run (shared.service.serve): uvicorn's defaults, no access log.
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class Hello:
    """The bare FastAPI/uvicorn service, in its own process while in the ``with``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._proc: multiprocessing.process.BaseProcess | None = None

    def __enter__(self) -> Hello:
        self._proc = multiprocessing.get_context("spawn").Process(
            target=_serve_hello, args=(self.port,), name="rapport-bench-hello", daemon=True)
        self._proc.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"the hello service did not start on port {self.port}")

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def __exit__(self, *_: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
            self._proc = None
