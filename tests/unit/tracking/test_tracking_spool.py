from __future__ import annotations

import os

import pytest

from tracking.spool import Spool, SpoolFull


def test_append_seal_read_remove(tmp_path, make_record):
    spool = Spool(tmp_path / "s")
    assert not spool.has_pending()
    records = [make_record() for _ in range(5)]
    assert spool.append(records) == 5
    assert spool.has_pending()
    assert spool.sealed_files() == []  # still open for appends
    spool.seal()
    (path,) = spool.sealed_files()
    chunks = list(Spool.read(path, chunk=2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert [r for c in chunks for r in c] == records
    spool.remove(path)
    assert not spool.has_pending()


def test_torn_last_line_is_skipped(tmp_path, make_record):
    spool = Spool(tmp_path)
    spool.append([make_record(), make_record()])
    spool.seal()
    (path,) = spool.sealed_files()
    with path.open("ab") as f:
        f.write(b'{"id": "torn", "timest')
    assert len([r for c in Spool.read(path) for r in c]) == 2


def test_files_rotate_and_size_is_capped(tmp_path, make_record):
    spool = Spool(tmp_path, max_file_bytes=1, max_bytes=10_000)
    spool.append([make_record()])
    spool.append([make_record()])
    assert len(spool.sealed_files()) == 1
    with pytest.raises(SpoolFull):
        spool.append([make_record(request={"blob": "x" * 20_000})])
    spool.close()
    assert len(spool.sealed_files()) == 2


def test_orphans_of_dead_processes_are_adopted(tmp_path, make_record):
    spool = Spool(tmp_path)
    spool.append([make_record()])  # alive in this process: must be left alone
    data = next(tmp_path.glob("*.open")).read_bytes()
    other_live_process = tmp_path / f"spool-{os.getppid()}-aaaa-000000.jsonl.open"
    other_live_process.write_bytes(data)
    # Left by hard-killed processes: one with a pid that is gone, one with our pid reused.
    (tmp_path / "spool-999999999-bbbb-000000.jsonl.open").write_bytes(data)
    (tmp_path / f"spool-{os.getpid()}-cccc-000000.jsonl.open").write_bytes(data)
    fresh = Spool(tmp_path)
    assert fresh.adopt_orphans() == 2
    assert other_live_process.exists()
    assert len(fresh.sealed_files()) == 2
    spool.close()  # its own file is still there to seal
    assert len(fresh.sealed_files()) == 3
