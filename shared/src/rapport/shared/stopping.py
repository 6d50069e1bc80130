"""Shutdown steps that end: every service stops its loops and closes its clients here.

Why not ``asyncio.wait_for``: on a timeout it cancels the step and then *waits for the
cancellation to finish*, so a step that does not give way (a Kafka client's ``stop``
stuck on a broker that went away, a task whose ``finally`` awaits such a close) holds
the process past any bound. :func:`bounded` waits at most ``timeout_s``, cancels, and
moves on; the abandoned step is logged, never awaited again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import structlog

log = structlog.get_logger(__name__)

STEP_TIMEOUT_S = 10.0


def _retrieve(task: asyncio.Future[object]) -> None:
    """Read an abandoned step's outcome so asyncio does not report it as never read."""
    if not task.cancelled():
        task.exception()


async def bounded(step: Awaitable[object], what: str,
                  timeout_s: float = STEP_TIMEOUT_S) -> bool:
    """Await ``step`` for at most ``timeout_s``; True when it ended by itself.

    A step that fails is logged and counts as ended: shutting down goes on either way.
    """
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        task.add_done_callback(_retrieve)
        log.warning("shutdown_step_abandoned", step=what, timeout_s=timeout_s)
        return False
    if not task.cancelled() and task.exception() is not None:
        log.warning("shutdown_step_failed", step=what, error=repr(task.exception()))
    return True


async def cancel(task: asyncio.Future[object], what: str,
                 timeout_s: float = STEP_TIMEOUT_S) -> bool:
    """Cancel a background task and give it ``timeout_s`` to unwind."""
    if task.done():
        _retrieve(task)
        return True
    task.cancel()
    return await bounded(task, what, timeout_s)
