"""The stop sequence, bounded in every state (arq's): stop fetching, drain with a
deadline, then cancel.

1. ``SIGTERM``/``SIGINT`` set the stop event; the loop stops fetching at its next turn.
2. The service drains: the flush in flight finishes, what is buffered is applied and
   committed to PostgreSQL, and the offsets to Kafka; the process exits 0. Retries of
   transient failures go on meanwhile: PostgreSQL may come back in time.
3. If that is not done ``shutdown_timeout`` seconds after the signal, the work is
   cancelled: the transaction in flight rolls back (nothing is half-applied, and what
   was not applied is read again at the next start from the stored offsets), the
   clients are closed without waiting on servers that may not answer, and the process
   exits 1 saying what was not applied. When nothing read was left unapplied (only the
   Kafka commit, kept for lag tooling, or leaving the group did not finish: a broker
   outage), it exits 0 with a warning: PostgreSQL holds every offset.

A stop during start-up (PostgreSQL or the broker not reachable yet) has nothing to
drain: the connect retry is cancelled at once, before the service joins the group,
and the process exits 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from sink.errors import FatalError
from sink.service.batcher import Batcher, FlushUnit

log = structlog.get_logger("sink.service")


async def supervise(
    main: asyncio.Task[None],
    stopping: asyncio.Event,
    *,
    deadline: float,
    consuming: Callable[[], bool],
    unapplied: Callable[[], tuple[int, str]],
    abort: Callable[[], Awaitable[None]],
    close: Callable[[], Awaitable[None]],
) -> int:
    """Wait for ``main`` (start-up, the loop, the drain); on a stop, bound it as above.
    ``abort`` cancels the work and closes the clients; ``close`` closes them after a
    drain that finished."""
    stop = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait({main, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    if not main.done():
        if not consuming():
            await abort()
            log.info("stopped before start-up finished; nothing was read")
            return 0
        await asyncio.wait({main}, timeout=deadline)
        if not main.done():
            left, what = unapplied()
            if not left:
                log.warning("shutdown_timeout passed with everything read applied; the Kafka "
                            "commit or leaving the group did not finish", seconds=deadline)
                await abort()
                return 0
            reason = (f"shutdown_timeout={deadline:g}s passed before the drain finished: "
                      f"{what} not applied (read again at the next start)")
            log.error("stopping", reason=reason)
            await abort()
            raise FatalError(reason)
    failed = None if main.cancelled() else main.exception()
    if main.cancelled() or failed is not None:
        if isinstance(failed, FatalError):
            log.error("stopping", reason=str(failed))
        await abort()
        main.result()  # raises what stopped it
    await close()
    return 0


def describe_unapplied(batcher: Batcher, unit: FlushUnit | None) -> tuple[int, str]:
    """What a cancelled drain leaves unapplied: the messages buffered or in the unit in
    flight, and a line naming them with their partitions."""
    n = batcher.count + (len(unit.records) + len(unit.letters) if unit else 0)
    parts = {tp for tp, b in batcher.buffers.items() if b.next_offset is not None}
    parts |= set(unit.partitions) if unit else set()
    if not parts:  # a unit or buffer of skipped messages only still moves an offset
        return 0, "nothing"
    names = ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in parts))
    return max(n, 1), f"{n} records of {names}"


async def close_within(seconds: float, stopping: Awaitable[None]) -> None:
    """Await a client's stop for ``seconds`` at most, whatever it raises. aiokafka's
    consumer re-raises the CancelledError of its own fetch task when that task was in a
    retry back-off (a broker outage): the stop is done all the same, so only a
    cancellation of this task itself goes on up."""
    try:
        await asyncio.wait_for(stopping, timeout=seconds)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
    except Exception:  # closing: nothing is left to do about it
        pass


__all__ = ["close_within", "describe_unapplied", "supervise"]
