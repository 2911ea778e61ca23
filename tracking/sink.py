"""Sink protocol and the BatchingWriter that is the only caller of a sink.

The request path calls `BatchingWriter.submit`, which never awaits: it puts the record on a bounded
queue. One background task drains the queue in batches into the sink.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from tracking.records import TraceRecord

logger = logging.getLogger("tracking")


class Sink(Protocol):
    """Where records land. Only the writer task calls it, never the request path."""

    async def write(self, records: Sequence[TraceRecord]) -> None: ...

    async def aclose(self) -> None: ...


S = TypeVar("S")
_SINKS: dict[str, type] = {}


def register_sink(name: str) -> Callable[[type[S]], type[S]]:
    def decorator(cls: type[S]) -> type[S]:
        _SINKS[name] = cls
        return cls

    return decorator


def get_sink_class(name: str) -> type:
    try:
        return _SINKS[name]
    except KeyError:
        raise ValueError(f"unknown sink {name!r} (known: {', '.join(sorted(_SINKS))})") from None


@register_sink("none")
class NullSink:
    """Discards records: tracking switched off."""

    async def write(self, records: Sequence[TraceRecord]) -> None:
        return None

    async def aclose(self) -> None:
        return None


@register_sink("memory")
class MemorySink:
    """Keeps records in a list; for tests and embedding."""

    def __init__(self) -> None:
        self.records: list[TraceRecord] = []

    async def write(self, records: Sequence[TraceRecord]) -> None:
        self.records.extend(records)

    async def aclose(self) -> None:
        return None


class BatchingWriter:
    """Owns a bounded queue and the single task that calls Sink.write."""

    def __init__(
        self,
        sink: Sink,
        *,
        max_queue: int = 10_000,
        max_batch: int = 1_000,
        flush_interval: float = 0.1,
        on_drop: Callable[[str], None] | None = None,
    ) -> None:
        self.sink = sink
        self.max_batch = max_batch
        self.flush_interval = flush_interval
        self._queue: asyncio.Queue[TraceRecord] = asyncio.Queue(max_queue)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._on_drop = on_drop
        self._last_drop_log = 0.0
        self.dropped = 0

    def submit(self, record: TraceRecord) -> None:
        """Enqueue a record; sync on purpose so it can never block the request path."""
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._drop("queue_full")

    def qsize(self) -> int:
        return self._queue.qsize()

    def _drop(self, reason: str, count: int = 1) -> None:
        self.dropped += count
        if self._on_drop is not None:
            for _ in range(count):
                self._on_drop(reason)
        now = time.monotonic()
        if now - self._last_drop_log >= 1.0:
            self._last_drop_log = now
            logger.warning("tracking: dropped %d record(s) (%s); %d dropped so far", count, reason, self.dropped)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="tracking-writer")

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            deadline = time.monotonic() + self.flush_interval
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            await self._write(batch)

    async def _write(self, batch: list[TraceRecord]) -> None:
        for attempt in range(3):
            try:
                await self.sink.write(batch)
                return
            except Exception:
                logger.exception("tracking: sink write failed (attempt %d)", attempt + 1)
                await asyncio.sleep(0.05 * 2**attempt)
        self._drop("sink_error", len(batch))

    async def flush(self) -> None:
        """Write everything queued so far (used by tests and shutdown)."""
        batch: list[TraceRecord] = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
            if len(batch) >= self.max_batch:
                await self._write(batch)
                batch = []
        if batch:
            await self._write(batch)

    async def aclose(self, *, timeout: float = 10.0) -> None:
        """Stop the writer task, drain and flush what is queued, close the sink."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        try:
            await asyncio.wait_for(self.flush(), timeout)
        finally:
            await self.sink.aclose()
