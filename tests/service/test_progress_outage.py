"""The progress figures while PostgreSQL is away (no servers: the offsets table is a
function that answers, then raises as asyncpg does when the server is down)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition

from sink.metrics import Metrics
from sink.service import progress as progress_module
from sink.service.progress import Progress

TP = TopicPartition("t", 0)


async def test_rate_falls_to_zero_while_postgresql_is_away(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen on a real catch-up (PostgreSQL stopped for 10 s): the live line kept "2,482
    ev/s · ETA 00:22" through the whole outage, because a failed read left the samples as
    they were. Nothing is applied while PostgreSQL is away; the figures must say so."""
    clock = {"now": 0.0}
    # The module's clock only: the event loop keeps the real one.
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(monotonic=lambda: clock["now"]))
    applied = {"offset": 0}
    up = {"pg": True}

    async def stored(_topics: list[str]) -> dict[tuple[str, int], int]:
        if not up["pg"]:
            raise ConnectionRefusedError(111, "Connect call failed")
        return {("t", 0): applied["offset"]}

    p = Progress(Metrics(), stored, tty=False)
    p.target({TP: 0}, {TP: 100_000})
    for second in range(1, 6):  # 1,000 events/s
        clock["now"], applied["offset"] = float(second), second * 1000
        await p._sample()
    assert p.rate == pytest.approx(1000)
    assert p.eta_seconds == pytest.approx(95)

    up["pg"] = False
    for second in range(6, 18):
        clock["now"] = float(second)
        await p._sample()
    assert p.done == 5000  # the last figure read stands
    assert p.rate == 0
    assert p.eta_seconds is None  # no ETA from a rate of nothing

    up["pg"], applied["offset"] = True, 7000
    clock["now"] = 18.0
    await p._sample()
    assert p.done == 7000 and p.rate is not None and p.rate > 0
