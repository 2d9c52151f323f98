"""How far a run is, for the person watching it.

On a terminal: one live line (tqdm) — events applied of the total, events/s, lag left,
ETA, dead letters. Elsewhere: a ``progress`` log line at ``info`` every few seconds, so a
catch-up over ten million events prints tens of lines, not one per flush (the per-flush
``batch processed`` lines are at ``debug``).

Progress is counted in Kafka offsets, from the offsets table in PostgreSQL: what is
stored there is applied and committed, for this process's partitions and the other
members' alike, so one query every tick says how far the whole group is. Rate and ETA
come from the change of that sum over the last few ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

import structlog
from aiokafka import TopicPartition
from tqdm import tqdm

from sink.metrics import Metrics

log = structlog.get_logger("sink.progress")

#: ``off`` in a worker of ``run --workers N``: the parent draws the group's view.
PROGRESS_ENV = "WARP_PROGRESS"

StoredOffsets = Callable[[list[str]], Awaitable[dict[tuple[str, int], int]]]

TTY_INTERVAL_S = 0.5
_RATE_WINDOW_S = 10.0
_FALLBACK_COLUMNS = 100
_FALLBACK_ROWS = 24


def metric_sum(family: Any) -> float:
    """The sum of a counter's or a gauge's samples over all their label sets."""
    total = 0.0
    for metric in family.collect():
        for sample in metric.samples:
            if sample.name in (metric.name, metric.name + "_total"):
                total += sample.value
    return total


class Progress:
    """Render progress until :meth:`close`. ``target`` (``run --until-caught-up``) gives the
    total; without one, progress is the rate and the lag of a service that runs on."""

    def __init__(self, metrics: Metrics, stored: StoredOffsets, *, interval: float = 10.0,
                 stream: TextIO | None = None, tty: bool | None = None,
                 dead_letters: bool = True) -> None:
        self.metrics = metrics
        # The group's view (group_view) cannot see the workers' DLQ counters: it leaves
        # the figure out rather than show 0.
        self.show_dead_letters = dead_letters
        self.interval = interval
        self.stored = stored
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.start: dict[TopicPartition, int] = {}
        self.end: dict[TopicPartition, int] = {}
        self.done = 0
        self._samples: deque[tuple[float, float]] = deque([(time.monotonic(), 0.0)])
        self._logged_done = 0
        self._bar: tqdm[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._saved_stderr: TextIO | None = None

    @property
    def total(self) -> int | None:
        if not self.end:
            return None
        return sum(max(0, end - self.start.get(tp, 0)) for tp, end in self.end.items())

    def target(self, start: dict[TopicPartition, int], end: dict[TopicPartition, int]) -> None:
        """The run is done when every partition's stored offset reaches ``end``."""
        self.start = {tp: min(start.get(tp, 0), e) for tp, e in end.items()}
        self.end = dict(end)

    async def run(self) -> None:
        """Tick until cancelled; each tick reads the offsets table once."""
        tick = TTY_INTERVAL_S if self.tty else min(1.0, self.interval)
        next_log = time.monotonic() + self.interval
        while True:
            await asyncio.sleep(tick)
            await self._sample()
            if self.tty:
                self._draw()
            elif time.monotonic() >= next_log:
                next_log = time.monotonic() + self.interval
                # An idle service says nothing: a line only when events were applied.
                if self.done != self._logged_done or self.end:
                    self._logged_done = self.done
                    self._log("progress")

    def show(self) -> None:
        """Render in the background until :meth:`stop`."""
        self._task = asyncio.create_task(self.run(), name="progress")

    async def stop(self, *, final: bool) -> None:
        """Stop rendering; ``final``: the run ended well, show its last figures."""
        if self._task is None:
            return
        self._task.cancel()
        self._task = None
        if final:
            with contextlib.suppress(Exception):  # figures only: never fail a clean stop
                await asyncio.wait_for(self.finish(), timeout=5)
        self.close()

    async def finish(self) -> None:
        """The run is over: the final figures, drawn or logged once more."""
        await self._sample()
        if self.tty:
            self._draw()
        self.close()
        self._log("progress final")

    def close(self) -> None:
        """Stop rendering (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._saved_stderr is not None:
            sys.stderr = self._saved_stderr
            self._saved_stderr = None

    # --- figures -------------------------------------------------------------------

    async def _sample(self) -> None:
        now = time.monotonic()
        if self.end:
            topics = sorted({tp.topic for tp in self.end})
            try:
                stored = await self.stored(topics)
            except Exception:
                # PostgreSQL away: nothing is applied meanwhile (rows and offsets commit
                # together), so the count stands and the rate falls, rather than the last
                # good rate and ETA shown through the outage. The loop tries again.
                stored = None
            if stored is not None:
                self.done = sum(
                    max(0, min(stored.get((tp.topic, tp.partition), self.start[tp]), end)
                        - self.start[tp]) for tp, end in self.end.items())
            counted: float = self.done
        else:
            counted = metric_sum(self.metrics.records_processed) + \
                metric_sum(self.metrics.dlq_records)
            self.done = int(counted)
        self._samples.append((now, counted))
        while len(self._samples) > 2 and now - self._samples[0][0] > _RATE_WINDOW_S:
            self._samples.popleft()

    @property
    def rate(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else None

    @property
    def lag(self) -> int:
        if self.end:
            total = self.total or 0
            return max(0, total - self.done)
        return int(metric_sum(self.metrics.lag))

    @property
    def eta_seconds(self) -> float | None:
        rate = self.rate
        if not self.end or rate is None or rate <= 0:
            return None
        return self.lag / rate

    @property
    def dead_letters(self) -> int:
        return int(metric_sum(self.metrics.dlq_records))

    # --- rendering -----------------------------------------------------------------

    def _log(self, event: str) -> None:
        rate, eta = self.rate, self.eta_seconds
        log.info(event, applied=self.done, total=self.total,
                 events_per_second=None if rate is None else round(rate, 1),
                 lag=self.lag, eta_seconds=None if eta is None else round(eta, 1),
                 **({"dead_letters": self.dead_letters} if self.show_dead_letters else {}))

    def _draw(self) -> None:
        if self._bar is None:
            self._bar = terminal_bar(self.total, self.stream, unit="ev", initial=self.done)
            # Log lines must not tear the live line: they go out around it.
            self._saved_stderr = sys.stderr
            sys.stderr = _AroundBar(self._saved_stderr, self.stream)
        rate, eta = self.rate, self.eta_seconds
        parts = [f"{rate:,.0f} ev/s" if rate is not None else "- ev/s",
                 f"lag {self.lag:,}"]
        if self.end:
            parts.append(f"ETA {_clock(eta)}")
        if self.show_dead_letters:
            parts.append(f"dead letters {self.dead_letters:,}")
        figures = " · ".join(parts).replace("{", "{{").replace("}", "}}")
        self._bar.bar_format = ("{l_bar}{bar}| {n_fmt}/{total_fmt} events · " if self.end
                                else "{n_fmt} events applied · ") + figures
        self._bar.n = self.done
        self._bar.refresh()


def terminal_bar(total: int | None, stream: TextIO, *, unit: str,
                 initial: int = 0) -> tqdm[Any]:
    """A tqdm live line on ``stream`` (a terminal), drawn only when refreshed."""
    width, height = _terminal_size(stream)
    # A pseudo-terminal nobody sized says 0x0, and tqdm then hides the line.
    return tqdm(total=total, initial=initial, file=stream, unit=unit,
                leave=True, mininterval=0, ncols=width or _FALLBACK_COLUMNS,
                nrows=height or _FALLBACK_ROWS, dynamic_ncols=bool(width))


def _terminal_size(stream: TextIO) -> tuple[int, int]:
    """The terminal's columns and rows; 0 where it says none."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return 0, 0
    return size.columns, size.lines


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else \
        f"{s // 60:02d}:{s % 60:02d}"


class _AroundBar:
    """A stand-in for ``sys.stderr`` while a live line is shown: whole lines are written
    with the live line cleared first and drawn again after."""

    def __init__(self, real: TextIO, bar_stream: TextIO) -> None:
        self.real = real
        self.bar_stream = bar_stream
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        if "\n" in self.pending:
            complete, _, self.pending = self.pending.rpartition("\n")
            with tqdm.external_write_mode(file=self.bar_stream):
                self.real.write(complete + "\n")
                self.real.flush()
        return len(text)

    def flush(self) -> None:
        self.real.flush()

    def isatty(self) -> bool:
        return self.real.isatty()

    def fileno(self) -> int:
        return self.real.fileno()
