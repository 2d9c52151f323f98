"""Retrying transient failures: exponential backoff with jitter, forever or until
``errors.retry_deadline_seconds``, after which the failure is fatal (exit 1)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from aiokafka.errors import KafkaError

from sink.config import ErrorsConfig
from sink.errors import FatalError, TransientError
from sink.service.access import AUTHENTICATION, AUTHORIZATION

log = structlog.get_logger("sink.retry")
T = TypeVar("T")

RETRIABLE = (TransientError, KafkaError, OSError)


async def retrying(
    fn: Callable[[], Awaitable[T]],
    what: str,
    policy: ErrorsConfig,
    *,
    on_failure: Callable[[BaseException], None] | None = None,
    on_recovery: Callable[[], None] | None = None,
) -> T:
    """Await ``fn()`` until it succeeds. ``on_failure`` runs before each wait (pause the
    partitions, count the error); ``on_recovery`` after a success that needed retries."""
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            result = await fn()
        except RETRIABLE as exc:
            _cancelled_meanwhile()
            if isinstance(exc, AUTHORIZATION + AUTHENTICATION):  # a person must fix these
                raise FatalError(f"{what}: kafka refused access: {type(exc).__name__} (hint: "
                                 "check the credentials and ACLs of the sink's principal)",
                                 code="kafka_acl") from None
            attempt += 1
            waited = time.monotonic() - started
            if policy.retry_deadline_seconds and waited >= policy.retry_deadline_seconds:
                raise FatalError(f"{what} still failing after {waited:.0f}s "
                                 f"(retry_deadline_seconds): {exc}") from exc
            if on_failure is not None:
                on_failure(exc)
            delay = min(policy.retry_max_backoff_seconds,
                        policy.retry_initial_backoff_seconds * 2 ** min(attempt, 20))
            delay *= 0.5 + random.random() / 2
            log.warning("transient failure, retrying", operation=what, attempt=attempt,
                        error=str(exc), delay=round(delay, 2))
            await asyncio.sleep(delay)
        else:
            if attempt and on_recovery is not None:
                on_recovery()
            return result


def _cancelled_meanwhile() -> None:
    """Raise CancelledError if this task was cancelled while ``fn`` ran. A client that
    fails while unwinding a cancellation (asyncpg's transaction exit on a connection
    the abort just closed) replaces the CancelledError with its own error, which looks
    transient: retrying it would outlive the shutdown deadline forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
