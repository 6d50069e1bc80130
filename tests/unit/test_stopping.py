"""Shutdown steps end within their bound, even a step that does not give way to a cancel
(the case ``asyncio.wait_for`` waits on forever)."""

from __future__ import annotations

import asyncio
import time

from rapport.shared import batching, stopping


async def stubborn(release: asyncio.Event) -> None:
    """Swallows every cancel until released, as a client close stuck on a socket does."""
    while not release.is_set():
        try:
            await release.wait()
        except asyncio.CancelledError:
            continue


async def test_a_step_that_ignores_cancel_is_abandoned_after_its_bound() -> None:
    release = asyncio.Event()
    task = asyncio.create_task(stubborn(release))
    await asyncio.sleep(0)  # inside its loop
    started = time.monotonic()
    assert await stopping.cancel(task, "stubborn", timeout_s=0.2) is False
    assert time.monotonic() - started < 2
    assert not task.done()
    release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert task.done()


async def test_a_step_that_ends_or_fails_counts_as_ended() -> None:
    async def fails() -> None:
        raise RuntimeError("broker away")
    assert await stopping.bounded(asyncio.sleep(0), "quick") is True
    assert await stopping.bounded(fails(), "failing") is True


async def test_cancelling_a_finished_task_reads_its_outcome() -> None:
    async def fails() -> None:
        raise RuntimeError("done badly")
    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    assert await stopping.cancel(task, "finished") is True


async def test_a_batch_loop_that_will_not_stop_is_left_behind_within_twice_its_grace() -> None:
    release = asyncio.Event()

    class Loop:
        def stop(self) -> None:
            pass
    task = asyncio.create_task(stubborn(release))
    started = time.monotonic()
    await batching.shutdown(Loop(), task, grace_s=0.2)
    assert time.monotonic() - started < 2
    release.set()
