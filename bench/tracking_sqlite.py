"""How fast the SQLite sink writes: records/s for the sink alone and through the BatchingWriter.

    .venv/bin/python bench/tracking_sqlite.py [--records 200000] [--batch 1000] [--db /tmp/x.db]

The records look like real chat calls (a short conversation and answer, usage, timings). Issue 4
asks for >= 20,000 records/s from the sink alone. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.tap import next_id
from tracking.content import ContentPolicy
from tracking.records import TraceRecord, Usage
from tracking.sink import BatchingWriter
from tracking.sinks.sqlite import SQLiteSink
from tracking.store import open_store


def make_records(n: int) -> list[TraceRecord]:
    now = time.time()
    return [
        TraceRecord(
            id=next_id(),  # the gateway's own id scheme
            timestamp=now + i * 1e-4,
            endpoint="chat",
            endpoint_type="llm/v1/chat",
            provider="openai",
            model="gpt-4o-mini",
            route="/v1/chat/completions",
            stream=bool(i % 2),
            status=200,
            client_request_id=f"req-{i}",
            request={
                "messages": [
                    {"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": f"Question number {i}: what is the capital of France?"},
                ],
                "temperature": 0.2,
                "max_tokens": 64,
            },
            response={
                "id": f"chatcmpl-{i}",
                "object": "chat.completion",
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 25, "completion_tokens": 2, "total_tokens": 27},
            },
            usage=Usage(25, 2, 27),
            latency_ms=120.5,
            ttft_ms=40.1 if i % 2 else None,
            response_model="gpt-4o-mini-2024-07-18",
            upstream_id=f"chatcmpl-{i}",
            client="127.0.0.1",
            finish_reason="stop",
        )
        for i in range(n)
    ]


async def bench_sink(path: str, records: list[TraceRecord], batch: int) -> float:
    sink = SQLiteSink(path)
    await sink.open()
    started = time.perf_counter()
    for i in range(0, len(records), batch):
        await sink.write(records[i : i + batch])
    elapsed = time.perf_counter() - started
    await sink.aclose()
    return len(records) / elapsed


async def bench_writer(path: str, records: list[TraceRecord], batch: int) -> float:
    """Submit as a busy gateway would (yielding to the loop between bursts), then drain on aclose."""
    writer = BatchingWriter(
        SQLiteSink(path), max_queue=len(records), max_batch=batch, flush_interval=0.1, transform=ContentPolicy()
    )
    await writer.start()
    started = time.perf_counter()
    for i, record in enumerate(records):
        writer.submit(record)
        if i % 100 == 99:
            await asyncio.sleep(0)
    await writer.aclose(timeout=600)
    elapsed = time.perf_counter() - started
    assert writer.dropped == 0 and writer.spilled == 0
    return len(records) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--db", help="database file (default: a new one in a temp dir)")
    args = parser.parse_args()

    records = make_records(args.records)
    with tempfile.TemporaryDirectory() as tmp:
        sink_db = args.db or os.path.join(tmp, "sink.db")
        writer_db = (args.db + ".writer") if args.db else os.path.join(tmp, "writer.db")
        sink_rate = asyncio.run(bench_sink(sink_db, records, args.batch))
        writer_rate = asyncio.run(bench_writer(writer_db, records, args.batch))
        with open_store(sink_db) as store:
            assert store.count_traces() == args.records
        with open_store(writer_db) as store:
            assert store.count_traces() == args.records
    print(f"records: {args.records}, batch: {args.batch}")
    print(f"sqlite sink alone:                       {sink_rate:>10,.0f} records/s")
    print(f"writer + redaction + sqlite (end to end): {writer_rate:>10,.0f} records/s")


if __name__ == "__main__":
    main()
