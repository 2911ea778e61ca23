"""The postgresql sink against a real server (.ci/postgres.sh starts one and sets TRACKING_TEST_PG_DSN)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from tracking import TrackingSettings, build_writer
from tracking.records import TraceRecord, Usage

asyncpg = pytest.importorskip("asyncpg")
DSN = os.environ.get("TRACKING_TEST_PG_DSN")
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not DSN, reason="TRACKING_TEST_PG_DSN is not set (start a server with .ci/postgres.sh start)"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def table() -> AsyncIterator[str]:
    name = f"traces_{uuid.uuid4().hex[:10]}"
    yield name
    conn = await asyncpg.connect(DSN)
    await conn.execute(f"DROP TABLE IF EXISTS {name}")
    await conn.execute(f"DROP TABLE IF EXISTS {name}_migrations")
    await conn.close()


def record(i: int, **overrides) -> TraceRecord:
    fields = {
        "id": f"pg-{i:06d}",
        "timestamp": time.time(),
        "endpoint": "chat",
        "endpoint_type": "llm/v1/chat",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "route": "/v1/chat/completions",
        "stream": i % 2 == 0,
        "status": 200,
        "request": {"messages": [{"role": "user", "content": f"q{i}"}]},
        "response": {"choices": [{"message": {"role": "assistant", "content": f"a{i}"}}]},
        "usage": Usage(i, 1, i + 1),
        "latency_ms": 3.0,
    }
    fields.update(overrides)
    return TraceRecord(**fields)


async def rows(table: str) -> list:
    conn = await asyncpg.connect(DSN)
    try:
        return await conn.fetch(f"SELECT * FROM {table} ORDER BY id")
    finally:
        await conn.close()


def settings(table: str, tmp_path, **extra) -> TrackingSettings:
    return TrackingSettings.model_validate(
        {"sinks": [{"type": "postgresql", "dsn": DSN, "table": table}], "spool_dir": str(tmp_path / "spool"), **extra}
    )


async def test_writes_idempotently_with_json_columns(table, tmp_path):
    from tracking.sinks.postgres import PostgresSink

    sink = PostgresSink(DSN, table=table)
    await sink.open()
    batch = [record(i) for i in range(50)]
    await sink.write(batch)
    await sink.write(batch[10:20])  # a replay
    await sink.aclose()
    got = await rows(table)
    assert len(got) == 50
    first = got[3]
    assert first["id"] == "pg-000003"
    assert first["stream"] is False
    assert first["total_tokens"] == 4
    assert '"q3"' in first["request"]
    assert "secret" not in repr(sink)


async def test_writer_under_concurrency_every_record_exactly_once(table, tmp_path):
    writer = build_writer(settings(table, tmp_path, batch_size=250, queue_size=2000))
    await writer.start()

    async def client(n: int) -> None:
        for i in range(100):
            writer.submit(record(n * 100 + i))
            await asyncio.sleep(0)

    await asyncio.gather(*(client(n) for n in range(100)))
    await writer.aclose()
    got = await rows(table)
    assert len(got) == 10_000
    assert len({r["id"] for r in got}) == 10_000
    assert all(r["prompt_tokens"] == int(r["id"][3:]) for r in got)
    assert writer.dropped == 0


async def test_outage_mid_load_spools_then_replays_exactly_once(table, tmp_path):
    writer = build_writer(settings(table, tmp_path, batch_size=100))
    writer.retry_delay = 0.0
    writer.max_sink_backoff = 0.0  # probe at once after recovery; the test decides when that is
    await writer.start()
    for i in range(300):
        writer.submit(record(i))
    await writer.flush()

    admin = await asyncpg.connect(DSN)
    # The table disappearing is an outage the sink cannot paper over; kill its connection too.
    await admin.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
    await admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'llm-gateway-tracking'"
    )
    for i in range(300, 800):
        writer.submit(record(i))
    await writer.flush()
    assert writer.spilled > 0
    assert len(await rows(f"{table}_away")) == 300

    await admin.execute(f"ALTER TABLE {table}_away RENAME TO {table}")
    await admin.close()
    for i in range(800, 900):
        writer.submit(record(i))
    await writer.aclose()  # drains the queue and replays the spool while the sink works
    got = await rows(table)
    assert [r["id"] for r in got] == [f"pg-{i:06d}" for i in range(900)]
    assert writer.dropped == 0
    assert not list((tmp_path / "spool").glob("*.jsonl*"))
