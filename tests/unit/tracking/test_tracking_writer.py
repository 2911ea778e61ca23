from __future__ import annotations

import asyncio
from collections.abc import Sequence

import anyio
import pytest

from tracking.content import REDACTED, ContentPolicy
from tracking.records import TraceRecord
from tracking.sink import BatchingWriter, FanoutSink, MemorySink
from tracking.spool import Spool

pytestmark = pytest.mark.anyio


class FlakySink(MemorySink):
    """A MemorySink that fails while `down` is set, the way a database that went away does."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    async def write(self, records: Sequence[TraceRecord]) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("sink unavailable")
        await super().write(records)


class GatedSink(MemorySink):
    """Blocks inside `write` until the test opens the gate, to catch the writer mid-batch."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def write(self, records: Sequence[TraceRecord]) -> None:
        self.entered.set()
        await self.gate.wait()
        await super().write(records)


def ids(records):
    return sorted(r.id for r in records)


async def test_submit_then_flush_writes_everything(make_record):
    sink = MemorySink()
    writer = BatchingWriter(sink, max_batch=7)
    await writer.start()
    records = [make_record() for _ in range(50)]
    for r in records:
        writer.submit(r)
    await writer.flush()
    assert ids(sink.records) == ids(records)
    assert writer.qsize() == 0
    await writer.aclose()
    assert writer.written == 50


async def test_aclose_finishes_the_batch_being_written(make_record):
    # The old aclose cancelled the task and lost the batch it was writing.
    sink = GatedSink()
    writer = BatchingWriter(sink, max_batch=10, flush_interval=0.001)
    await writer.start()
    first = [make_record() for _ in range(10)]
    for r in first:
        writer.submit(r)
    await sink.entered.wait()
    later = [make_record() for _ in range(25)]
    for r in later:
        writer.submit(r)
    closing = asyncio.create_task(writer.aclose())
    await asyncio.sleep(0)
    sink.gate.set()
    await closing
    assert ids(sink.records) == ids(first + later)
    assert writer.dropped == 0


async def test_aclose_without_start_flushes(make_record):
    sink = MemorySink()
    writer = BatchingWriter(sink)
    writer.submit(make_record())
    await writer.aclose()
    assert len(sink.records) == 1


async def test_queue_full_without_spool_drops_and_counts(make_record):
    reasons = []
    writer = BatchingWriter(MemorySink(), max_queue=2, on_drop=reasons.append)
    for _ in range(5):
        writer.submit(make_record())
    assert writer.qsize() == 2
    assert writer.dropped == 3
    assert reasons == ["queue_full"] * 3
    assert writer.stats()["dropped_by_reason"] == {"queue_full": 3}
    await writer.aclose()


async def test_queue_full_spills_to_the_spool_and_is_replayed(tmp_path, make_record):
    sink = MemorySink()
    writer = BatchingWriter(sink, max_queue=3, spool=Spool(tmp_path / "spool"))
    records = [make_record() for _ in range(20)]
    for r in records:
        writer.submit(r)  # not started: the queue fills at 3
    assert writer.spilled == 17
    assert writer.dropped == 0
    await writer.start()
    await writer.flush()
    await writer.replay()
    assert ids(sink.records) == ids(records)
    assert writer.replayed == 17
    assert not writer.spool.has_pending()
    await writer.aclose()


async def test_sink_outage_spools_and_recovers_exactly_once(tmp_path, make_record):
    sink = FlakySink()
    writer = BatchingWriter(sink, max_batch=5, spool=Spool(tmp_path), retry_delay=0, max_sink_backoff=0)
    await writer.start()
    before = [make_record() for _ in range(10)]
    for r in before:
        writer.submit(r)
    await writer.flush()

    sink.down = True
    during = [make_record() for _ in range(12)]
    for r in during:
        writer.submit(r)
    await writer.flush()
    assert writer.spilled == 12
    assert writer.stats()["spool_pending_bytes"] > 0

    sink.down = False
    after = [make_record() for _ in range(3)]
    for r in after:
        writer.submit(r)
    await writer.flush()  # a successful write also replays spool files
    await writer.replay()
    assert ids(sink.records) == ids(before + during + after)
    assert len(sink.records) == 25
    assert writer.dropped == 0
    await writer.aclose()


async def test_replay_after_crash_between_write_and_delete_is_idempotent(tmp_path, make_record):
    sink = MemorySink()
    records = [make_record() for _ in range(8)]
    spool = Spool(tmp_path)
    spool.append(records)
    spool.seal()
    (path,) = spool.sealed_files()
    copy = path.with_name("spool-999999-000000-0.jsonl")  # same records, as if a replay died before delete
    copy.write_bytes(path.read_bytes())
    await sink.write(records[:3])  # some already landed
    writer = BatchingWriter(sink, spool=Spool(tmp_path))
    await writer.start()
    await writer.replay()
    assert ids(sink.records) == ids(records)
    assert not list(tmp_path.iterdir())
    await writer.aclose()


async def test_shutdown_timeout_spools_the_rest_and_next_start_replays(tmp_path, make_record):
    hung = GatedSink()  # never opened: a sink that hangs
    writer = BatchingWriter(hung, max_batch=4, flush_interval=0.001, spool=Spool(tmp_path))
    await writer.start()
    records = [make_record() for _ in range(10)]
    for r in records:
        writer.submit(r)
    await hung.entered.wait()
    await writer.aclose(timeout=0.01)
    assert writer.dropped == 0
    assert writer.spilled == 10
    writer.submit(make_record(id="late"))  # after close: spooled, not lost
    assert writer.spilled == 11

    sink = MemorySink()
    again = BatchingWriter(sink, spool=Spool(tmp_path))
    await again.start()
    await again.replay()
    assert ids(sink.records) == sorted([*(r.id for r in records), "late"])
    await again.aclose()


async def test_transform_runs_before_the_sink_and_the_spool(tmp_path, make_record):
    secret = "sk-abcdefghijklmnopqrstuvwxyz"
    record = make_record(request={"messages": [{"role": "user", "content": secret}]})
    sink = MemorySink()
    writer = BatchingWriter(sink, max_queue=1, spool=Spool(tmp_path), transform=ContentPolicy())
    writer.submit(record)
    writer.submit(make_record(request={"messages": [{"role": "user", "content": secret}]}))  # spills
    assert secret.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir())
    await writer.start()
    await writer.flush()
    await writer.replay()
    assert [r.request["messages"][0]["content"] for r in sink.records] == [REDACTED, REDACTED]
    await writer.aclose()


async def test_a_failing_transform_drops_only_that_record(make_record):
    def transform(record):
        if record.endpoint == "bad":
            raise RuntimeError("boom")
        return record

    sink = MemorySink()
    writer = BatchingWriter(sink, transform=transform)
    writer.submit(make_record(endpoint="bad"))
    writer.submit(make_record())
    await writer.aclose()
    assert len(sink.records) == 1
    assert writer.dropped_by_reason == {"transform_error": 1}


async def test_sink_failure_without_spool_drops_after_retries(make_record):
    sink = FlakySink()
    sink.down = True
    writer = BatchingWriter(sink, retries=3, retry_delay=0)
    writer.submit(make_record())
    await writer.flush()
    assert sink.calls == 3
    assert writer.dropped_by_reason == {"sink_error": 1}
    await writer.aclose()


async def test_fanout_writes_every_sink_and_fails_if_one_does(make_record):
    good, bad = MemorySink(), FlakySink()
    fan = FanoutSink([good, bad])
    await fan.write([make_record()])
    bad.down = True
    with pytest.raises(ConnectionError):
        await fan.write([make_record()])
    assert len(good.records) == 2
    assert len(bad.records) == 1
    await fan.aclose()


async def test_background_task_writes_without_flush(make_record):
    sink = MemorySink()
    writer = BatchingWriter(sink, max_batch=5, flush_interval=60)
    await writer.start()
    for _ in range(5):
        writer.submit(make_record())  # a full batch wakes the task at once, whatever the interval
    with anyio.fail_after(5):  # a bound on a hang, not a timing assertion
        while len(sink.records) < 5:
            await asyncio.sleep(0)
    await writer.aclose()
