from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tracking.metrics import WriterCollector
from tracking.sink import BatchingWriter, MemorySink


@pytest.mark.anyio
async def test_collector_exports_writer_stats(make_record):
    writer = BatchingWriter(MemorySink())
    registry = CollectorRegistry()
    current: list[BatchingWriter | None] = [None]
    registry.register(WriterCollector(lambda: current[0]))
    assert b"gateway_tracking_written_total" not in generate_latest(registry)
    current[0] = writer
    for _ in range(3):
        writer.submit(make_record())
    await writer.flush()
    text = generate_latest(registry).decode()
    assert "gateway_tracking_written_total 3.0" in text
    assert "gateway_tracking_batches_total 1.0" in text
    assert "gateway_tracking_sink_up 1.0" in text
    assert "gateway_tracking_spool_bytes 0.0" in text
    await writer.aclose()
