"""The load generator of ``rapport bench next-action``, in a process of its own (so its
CPU is not the service's, and the service's is not its), and the bare FastAPI "hello"
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

MAX_IN_FLIGHT = 256
HEADERS = {"Authorization": "Bearer dev-channel", "Content-Type": "application/json"}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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
    seed: int = 1


async def _send(http: httpx.AsyncClient, job: Job, body: bytes) -> int:
    try:
        return (await http.post(job.path, content=body, headers=HEADERS)).status_code
    except httpx.HTTPError:
        return 0


async def open_loop(job: Job) -> Load:
    rng = random.Random(job.seed)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    late, errors = 0.0, 0
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=job.url, timeout=10, limits=limits) as http:
        async def one(body: bytes, due: float) -> None:
            nonlocal errors
            status = await _send(http, job, body)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                latencies.append((time.perf_counter() - due) * 1000)
            else:
                errors += 1

        pending: set[asyncio.Task] = set()
        start = time.perf_counter() + 0.05
        due, i = start, 0
        while due < start + job.seconds:
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            else:  # behind: the client is the limit (let what was sent get answered)
                late = max(late, -wait * 1000)
                if i % 16 == 0:
                    await asyncio.sleep(0)
            if len(pending) >= MAX_IN_FLIGHT:
                errors += 1
            else:
                task = asyncio.create_task(one(job.bodies[i % len(job.bodies)], due))
                pending.add(task)
                task.add_done_callback(pending.discard)
            i += 1
            due += rng.expovariate(job.rate)
        await asyncio.gather(*pending)
    return Load(latencies, errors, job.seconds, late, statuses=statuses)


async def closed_loop(job: Job) -> Load:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    end = time.perf_counter() + job.seconds
    limits = httpx.Limits(max_connections=job.concurrency,
                          max_keepalive_connections=job.concurrency)
    async with httpx.AsyncClient(base_url=job.url, timeout=10, limits=limits) as http:
        async def worker(k: int) -> None:
            nonlocal errors
            i = k
            while (began := time.perf_counter()) < end:
                status = await _send(http, job, job.bodies[i % len(job.bodies)])
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append((time.perf_counter() - began) * 1000)
                else:
                    errors += 1
                i += job.concurrency

        start = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(job.concurrency)))
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
