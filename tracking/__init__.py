"""Records of every proxied call and of evaluation runs.

The gateway needs three things from here: `TrackingSettings` (its `tracking:` config section),
`build_writer(settings)` (the non-blocking writer it submits records to), and `open_store()`
(reading traces and recording evaluation runs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tracking.config import Capture, TrackingSettings
from tracking.content import ContentPolicy
from tracking.records import TraceRecord, Usage
from tracking.sink import BatchingWriter, FanoutSink, MemorySink, NullSink, Sink, get_sink_class, register_sink
from tracking.spool import Spool
from tracking.store import Store, open_store

__all__ = [
    "BatchingWriter",
    "Capture",
    "ContentPolicy",
    "FanoutSink",
    "MemorySink",
    "NullSink",
    "Sink",
    "Spool",
    "Store",
    "TraceRecord",
    "TrackingSettings",
    "Usage",
    "build_sink",
    "build_writer",
    "get_sink_class",
    "open_store",
    "register_sink",
]


def build_sink(settings: TrackingSettings) -> Sink:
    """The configured sink(s): one sink, a fan-out over several, or a NullSink for `sink: none`."""
    sinks: list[Sink] = [get_sink_class(s.type).from_settings(s) for s in settings.sinks]
    if not sinks:
        return NullSink()
    return sinks[0] if len(sinks) == 1 else FanoutSink(sinks)


def build_writer(
    settings: TrackingSettings,
    *,
    on_drop: Callable[[str], None] | None = None,
    sink: Sink | None = None,
) -> BatchingWriter:
    """The writer the gateway submits full records to; capture mode and redaction are applied inside.

    Args:
        sink: use this sink instead of the configured ones (tests pass a MemorySink).
    """
    if sink is None:
        sink = build_sink(settings)
    # With nothing to write to there is nothing to spill for, so no spool directory appears.
    spool = None
    if settings.spool_dir is not None and not isinstance(sink, NullSink):
        spool = Spool(Path(settings.spool_dir), max_bytes=settings.spool_max_bytes)
    return BatchingWriter(
        sink,
        max_queue=settings.queue_size,
        max_batch=settings.batch_size,
        flush_interval=settings.flush_interval,
        on_drop=on_drop,
        spool=spool,
        transform=ContentPolicy.from_settings(settings),
    )
