"""Prometheus view of a BatchingWriter: written, spilled, replayed, write time, spool size, sink health.

The gateway already exports `gateway_tracking_queue_depth` and `gateway_tracking_dropped_total`;
this collector adds the rest, read from `writer.stats()` at scrape time (no work on the request path):

    REGISTRY.register(WriterCollector(lambda: app.state.writer))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from tracking.sink import BatchingWriter


class WriterCollector:
    """A custom collector; `get_writer` may return None before start-up or after a reload swapped it."""

    def __init__(self, get_writer: Callable[[], BatchingWriter | None]) -> None:
        self._get_writer = get_writer

    def describe(self) -> list[Metric]:
        return []  # don't collect at registration time: the writer may not exist yet

    def collect(self) -> Iterator[Metric]:
        writer = self._get_writer()
        if writer is None:
            return
        stats = writer.stats()
        counters = {
            "written": ("Call records written to the sink (replays included).", stats["written"]),
            "spilled": ("Call records written to the local spool instead of the sink.", stats["spilled"]),
            "replayed": ("Call records replayed from the spool into the sink.", stats["replayed"]),
            "batches": ("Batches written to the sink.", stats["batches"]),
            "write_seconds": ("Time spent in sink writes.", stats["write_seconds"]),
        }
        for name, (doc, value) in counters.items():
            yield CounterMetricFamily(f"gateway_tracking_{name}", doc, value=value)
        yield GaugeMetricFamily(
            "gateway_tracking_spool_bytes", "Bytes in the spool waiting for replay.", value=stats["spool_pending_bytes"]
        )
        yield GaugeMetricFamily(
            "gateway_tracking_sink_up", "1 while the sink accepts writes, 0 while it is backing off.",
            value=1 if stats["sink_healthy"] else 0,
        )  # fmt: skip
