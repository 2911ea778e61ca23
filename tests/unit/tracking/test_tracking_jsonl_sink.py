from __future__ import annotations

import orjson
import pytest

from tracking.sinks.jsonl import JsonlSink

pytestmark = pytest.mark.anyio


def lines(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def test_appends_one_line_per_record_and_skips_replayed_ids(tmp_path, make_record):
    path = tmp_path / "logs" / "traces.jsonl"
    sink = JsonlSink(path)
    records = [make_record() for _ in range(5)]
    await sink.write(records)
    await sink.write(records[:2])
    await sink.aclose()
    assert [d["id"] for d in lines(path)] == [r.id for r in records]
    assert lines(path)[0] == records[0].to_dict()


async def test_rotates_by_size_and_keeps_n_backups(tmp_path, make_record):
    path = tmp_path / "t.jsonl"
    one_line = len(orjson.dumps(make_record().to_dict())) + 1
    sink = JsonlSink(path, max_bytes=one_line * 3 + 10, backups=2)
    records = [make_record() for _ in range(12)]  # same size as one_line: ids are fixed-width
    for r in records:
        await sink.write([r])
    await sink.aclose()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["t.jsonl", "t.jsonl.1", "t.jsonl.2"]
    kept = lines(tmp_path / "t.jsonl.2") + lines(tmp_path / "t.jsonl.1") + lines(path)
    assert [d["id"] for d in kept] == [r.id for r in records[-9:]]
    assert all(p.stat().st_size <= one_line * 3 + 10 for p in tmp_path.iterdir())


async def test_zero_backups_truncates(tmp_path, make_record):
    path = tmp_path / "t.jsonl"
    sink = JsonlSink(path, max_bytes=10, backups=0)
    await sink.write([make_record()])
    await sink.write([make_record(id="last")])
    await sink.aclose()
    assert [d["id"] for d in lines(path)] == ["last"]
