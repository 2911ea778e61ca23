from __future__ import annotations

import threading

import pytest

from tracking import TrackingSettings, build_writer
from tracking.records import Usage
from tracking.sinks.sqlite import SQLiteSink
from tracking.store import open_store

pytestmark = pytest.mark.anyio


async def test_write_is_idempotent_and_readable_by_the_store(tmp_path, make_record):
    db = tmp_path / "nested" / "t.db"
    sink = SQLiteSink(db)
    await sink.open()
    records = [make_record(usage=Usage(i, 2, i + 2), stream=bool(i % 2), ttft_ms=1.5) for i in range(20)]
    await sink.write(records)
    await sink.write(records[5:10])  # a replay of ids already stored
    await sink.write([])
    await sink.aclose()
    with open_store(str(db)) as store:
        assert store.count_traces() == 20
        assert store.get_trace(records[7].id) == records[7].to_dict()


async def test_writes_happen_on_one_thread_that_is_not_the_loop(tmp_path, make_record):
    seen = set()
    sink = SQLiteSink(tmp_path / "t.db")
    original = sink._write_sync

    def spy(records):
        seen.add(threading.get_ident())
        original(records)

    sink._write_sync = spy
    for _ in range(5):
        await sink.write([make_record()])
    await sink.aclose()
    assert len(seen) == 1
    assert threading.get_ident() not in seen


async def test_build_writer_end_to_end_with_redaction(tmp_path, make_record):
    settings = TrackingSettings.model_validate(
        {
            "sinks": [{"type": "sqlite", "path": str(tmp_path / "t.db")}],
            "spool_dir": str(tmp_path / "spool"),
            "redact": [r"\bAcme\b"],
            "endpoints": {"private": {"capture": "metadata"}},
        }
    )
    writer = build_writer(settings)
    await writer.start()
    writer.submit(make_record(id="a", request={"messages": [{"role": "user", "content": "Acme plans"}]}))
    writer.submit(make_record(id="b", endpoint="private"))
    await writer.aclose()
    with open_store(str(tmp_path / "t.db")) as store:
        assert store.get_trace("a")["request"]["messages"][0]["content"] == "[REDACTED] plans"
        assert "messages" not in store.get_trace("b")["request"]
        assert "choices" in store.get_trace("b")["response"]
    assert not (tmp_path / "spool").exists()  # nothing had to spill


async def test_many_concurrent_submitters_every_record_once(tmp_path, make_record):
    import asyncio

    writer = build_writer(
        TrackingSettings.model_validate(
            {
                "sinks": [{"type": "sqlite", "path": str(tmp_path / "t.db")}],
                "spool_dir": str(tmp_path / "spool"),
                "queue_size": 500,
                "batch_size": 200,
            }
        )
    )
    await writer.start()

    async def client(n):
        for i in range(100):
            writer.submit(make_record(id=f"c{n}-{i}", usage=Usage(n, i, n + i)))
            await asyncio.sleep(0)

    await asyncio.gather(*(client(n) for n in range(100)))
    await writer.aclose()
    with open_store(str(tmp_path / "t.db")) as store:
        assert store.count_traces() == 10_000
        got = store.get_trace("c42-17")
        assert got["usage"] == {"prompt_tokens": 42, "completion_tokens": 17, "total_tokens": 59}
    assert writer.dropped == 0
