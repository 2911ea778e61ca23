"""Sink protocol and the BatchingWriter that is the only caller of a sink.

The request path calls `BatchingWriter.submit`, which never awaits: it appends the record to a
bounded in-memory queue. One background task drains the queue in batches into the sink.

Nothing is lost on purpose (issue 4):
- the queue is full -> the record is appended to the local spool instead;
- the sink fails (after a few quick retries) -> the batch goes to the spool, new batches go
  straight to the spool while the sink is down, and the spool is replayed (idempotently, by
  record id) once a probe write succeeds;
- shutdown -> intake stops, the task finishes its batch, drains the queue and exits; only then
  is the sink closed.
A record is dropped only when there is no spool or the spool cannot be written; that is counted
(`dropped`, `on_drop(reason)`) and logged at most once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from tracking.records import TraceRecord
from tracking.spool import Spool

logger = logging.getLogger("tracking")


class Sink(Protocol):
    """Where records land. Only the writer task calls it, never the request path.

    `write` must be idempotent by `TraceRecord.id`: a replayed record may already be stored.
    """

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
    if name not in _SINKS:
        from tracking.sinks import load_sink_module  # late: the sink modules import this one

        load_sink_module(name)
    try:
        return _SINKS[name]
    except KeyError:
        from tracking.sinks import BUILTIN_SINKS

        known = sorted({*_SINKS, *BUILTIN_SINKS})
        raise ValueError(f"unknown sink {name!r} (known: {', '.join(known)})") from None


@register_sink("none")
class NullSink:
    """Discards records: tracking switched off."""

    async def write(self, records: Sequence[TraceRecord]) -> None:
        return None

    async def aclose(self) -> None:
        return None


@register_sink("memory")
class MemorySink:
    """Keeps records in a list; for tests and embedding. Idempotent by id, like every sink."""

    def __init__(self) -> None:
        self.records: list[TraceRecord] = []
        self._ids: set[str] = set()

    async def write(self, records: Sequence[TraceRecord]) -> None:
        for record in records:
            if record.id not in self._ids:
                self._ids.add(record.id)
                self.records.append(record)

    async def aclose(self) -> None:
        return None


class FanoutSink:
    """Several sinks at once; a batch counts as written only when every sink took it.

    A failure in one sink makes the whole batch go to the spool and be replayed to all of them,
    which is safe because each sink ignores ids it already has.
    """

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)

    async def open(self) -> None:
        for sink in self.sinks:
            opener = getattr(sink, "open", None)
            if opener is not None:
                await opener()

    async def write(self, records: Sequence[TraceRecord]) -> None:
        results = await asyncio.gather(*(s.write(records) for s in self.sinks), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def aclose(self) -> None:
        for sink in self.sinks:
            try:
                await sink.aclose()
            except Exception:
                logger.exception("tracking: closing sink %s failed", type(sink).__name__)


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
        spool: Spool | None = None,
        transform: Callable[[TraceRecord], TraceRecord] | None = None,
        retries: int = 3,
        retry_delay: float = 0.05,
        max_sink_backoff: float = 30.0,
    ) -> None:
        """
        Args:
            spool: where records go when the queue is full or the sink fails; None drops them.
            transform: applied to each record before it is written or spooled (capture, redaction).
            retries: quick write attempts per batch before the sink is considered down.
            max_sink_backoff: longest wait between probes of a sink that is down.
        """
        self.sink = sink
        self.max_queue = max_queue
        self.max_batch = max_batch
        self.flush_interval = flush_interval
        self.spool = spool
        self.transform = transform
        self.retries = max(1, retries)
        self.retry_delay = retry_delay
        self.max_sink_backoff = max_sink_backoff
        self._queue: deque[TraceRecord] = deque()
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._idle = False
        self._lock = asyncio.Lock()
        self._closing = False
        self._closed = False
        self._on_drop = on_drop
        self._last_drop_log = 0.0
        self._sink_down_until = 0.0  # monotonic; while in the future, batches go to the spool
        self._backoff = 0.0
        self.dropped = 0
        self.dropped_by_reason: Counter[str] = Counter()
        self.written = 0
        self.spilled = 0
        self.replayed = 0
        self.batches = 0
        self.write_seconds = 0.0

    # --- the request path ------------------------------------------------------------------

    def submit(self, record: TraceRecord) -> None:
        """Enqueue a record; sync on purpose so it can never block the request path."""
        if self._closing:
            self._spill([record], reason="closed")
            return
        if len(self._queue) >= self.max_queue:
            self._spill([record], reason="queue_full")
            return
        self._queue.append(record)
        # Wake the task only when it waits for a first record or a batch just filled up.
        if self._idle or len(self._queue) == self.max_batch:
            self._wakeup.set()

    def qsize(self) -> int:
        return len(self._queue)

    @property
    def sink_healthy(self) -> bool:
        return self._sink_down_until <= time.monotonic()

    def stats(self) -> dict[str, Any]:
        """Counters for metrics and `/health`."""
        return {
            "queued": len(self._queue),
            "written": self.written,
            "spilled": self.spilled,
            "replayed": self.replayed,
            "dropped": self.dropped,
            "dropped_by_reason": dict(self.dropped_by_reason),
            "batches": self.batches,
            "write_seconds": self.write_seconds,
            "spool_pending_bytes": self.spool.pending_bytes() if self.spool is not None else 0,
            "sink_healthy": self.sink_healthy,
        }

    # --- where records go when they cannot be written now -----------------------------------

    def _prepare(self, records: Sequence[TraceRecord]) -> list[TraceRecord]:
        if self.transform is None:
            return list(records)
        prepared = []
        for record in records:
            try:
                prepared.append(self.transform(record))
            except Exception:
                # Writing the untransformed record could leak content that must be redacted.
                logger.exception("tracking: content policy failed on record %s", record.id)
                self._drop("transform_error")
        return prepared

    def _spill(self, records: Sequence[TraceRecord], *, reason: str, prepared: bool = False) -> None:
        if self.spool is None:
            self._drop(reason, len(records))
            return
        try:
            self.spilled += self.spool.append(records if prepared else self._prepare(records))
        except Exception:
            logger.exception("tracking: cannot write the spool in %s", self.spool.directory)
            self._drop("spool_error", len(records))

    def _drop(self, reason: str, count: int = 1) -> None:
        self.dropped += count
        self.dropped_by_reason[reason] += count
        if self._on_drop is not None:
            for _ in range(count):
                self._on_drop(reason)
        now = time.monotonic()
        if now - self._last_drop_log >= 1.0:
            self._last_drop_log = now
            logger.warning("tracking: dropped %d record(s) (%s); %d dropped so far", count, reason, self.dropped)

    # --- the writer task --------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        opener = getattr(self.sink, "open", None)
        if opener is not None:
            await opener()
        if self.spool is not None and self.spool.adopt_orphans():
            logger.info("tracking: found spool files left by a previous process; replaying them")
        self._task = asyncio.create_task(self._run(), name="tracking-writer")

    async def _wait(self, timeout: float | None) -> None:
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)

    def _take(self) -> list[TraceRecord]:
        n = min(self.max_batch, len(self._queue))
        return [self._queue.popleft() for _ in range(n)]

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    await self._replay_all()  # leave the spool empty if the sink lets us
                    return
                await self._idle_tick()
                continue
            if len(self._queue) < self.max_batch and not self._closing:
                # Let the batch fill for up to flush_interval; `submit` wakes us if it fills first.
                await self._wait(self.flush_interval)
            batch = self._take()
            if not batch:  # `flush()` drained the queue while we waited
                continue
            async with self._lock:
                try:
                    await self._deliver(batch)
                except Exception:  # a bug here must not kill the only writer
                    logger.exception("tracking: unexpected error while writing a batch")
                    self._spill(batch, reason="writer_error")

    async def _idle_tick(self) -> None:
        replay_due = self.spool is not None and self.spool.has_pending()
        timeout = None
        if replay_due:
            timeout = max(0.0, self._sink_down_until - time.monotonic()) if not self.sink_healthy else 0.0
        if timeout != 0.0:
            self._idle = True
            try:
                await self._wait(timeout)
            finally:
                self._idle = False
        if not self._queue and replay_due and self.sink_healthy and not self._closing:
            async with self._lock:
                await self._replay_one()

    async def _write_once(self, records: Sequence[TraceRecord]) -> None:
        started = time.perf_counter()
        await self.sink.write(records)
        self.write_seconds += time.perf_counter() - started
        self.batches += 1

    async def _deliver(self, batch: list[TraceRecord]) -> None:
        """Write one batch, or spool it; never raises for a sink failure."""
        records = self._prepare(batch)
        if not records:
            return
        if not self.sink_healthy and self.spool is not None:
            self._spill(records, reason="sink_down", prepared=True)
            return
        try:
            for attempt in range(self.retries):
                try:
                    await self._write_once(records)
                    break
                except Exception:
                    if attempt + 1 == self.retries:
                        logger.exception("tracking: sink write failed %d times", self.retries)
                        self._sink_failed()
                        self._spill(records, reason="sink_error", prepared=True)
                        return
                    await asyncio.sleep(self.retry_delay * 2**attempt)
        except asyncio.CancelledError:
            # Shutdown ran out of time mid-write: keep the batch (the sink ignores it if it landed).
            self._spill(records, reason="cancelled", prepared=True)
            raise
        self.written += len(records)
        self._sink_ok()
        if self.spool is not None and self.spool.has_pending() and not self._closing:
            await self._replay_one()

    def _sink_failed(self) -> None:
        self._backoff = min(self.max_sink_backoff, max(self.retry_delay * 4, self._backoff * 2))
        self._sink_down_until = time.monotonic() + self._backoff

    def _sink_ok(self) -> None:
        self._backoff = 0.0
        self._sink_down_until = 0.0

    async def _replay_one(self) -> bool:
        """Replay one spool file (a probe of the sink when it was down); delete it once all landed.

        Returns whether a file was replayed.
        """
        assert self.spool is not None
        files = self.spool.sealed_files()
        if not files:
            self.spool.seal()  # make what is being appended replayable
            files = self.spool.sealed_files()
        if not files:
            self.spool.rescan()
            return False
        path = files[0]
        count = 0
        try:
            for chunk in Spool.read(path, self.max_batch):
                await self._write_once(chunk)
                count += len(chunk)
        except FileNotFoundError:
            self.spool.rescan()  # another process replayed it
            return False
        except Exception:
            logger.warning("tracking: sink still failing; %s stays in the spool", path.name, exc_info=True)
            self._sink_failed()
            return False
        self.spool.remove(path)
        self.replayed += count
        self.written += count
        self._sink_ok()
        return True

    async def flush(self) -> None:
        """Write everything submitted so far, including the batch the task is writing now."""
        while self._queue:
            batch = self._take()
            async with self._lock:
                await self._deliver(batch)
        async with self._lock:  # waits for the task's in-flight batch
            pass

    async def replay(self) -> None:
        """Replay the whole spool now, even if the sink was marked down; stops at the first failure."""
        self._sink_ok()
        await self._replay_all()

    async def _replay_all(self) -> None:
        while self.spool is not None and self.spool.has_pending() and self.sink_healthy:
            async with self._lock:
                if not await self._replay_one():
                    return

    async def aclose(self, *, timeout: float = 10.0) -> None:
        """Stop intake, let the task finish and drain the queue, then close the sink.

        If the sink hangs past `timeout`, what is left goes to the spool (or is counted as dropped).
        """
        if self._closed:
            return
        self._closing = True
        self._wakeup.set()
        try:
            if self._task is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(self._task), timeout)
                except TimeoutError:
                    logger.warning("tracking: writer did not drain within %.1fs; spooling the rest", timeout)
                    self._task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._task
                    self._spill(self._take_all(), reason="shutdown_timeout")
                self._task = None
            else:
                try:
                    await asyncio.wait_for(self.flush(), timeout)
                except TimeoutError:
                    logger.warning("tracking: flush did not finish within %.1fs; spooling the rest", timeout)
        finally:
            self._closed = True
            if self._queue:
                self._spill(self._take_all(), reason="shutdown_timeout")
            if self.spool is not None:
                self.spool.close()
            await self.sink.aclose()

    def _take_all(self) -> list[TraceRecord]:
        records = list(self._queue)
        self._queue.clear()
        return records
