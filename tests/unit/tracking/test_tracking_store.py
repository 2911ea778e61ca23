from __future__ import annotations

import sqlite3

import pytest

from tracking.migrations import MIGRATIONS, connect
from tracking.rows import to_row
from tracking.store import RunNotFound, open_store


def insert(path, records):
    conn = connect(str(path))
    conn.executemany(f"INSERT INTO traces VALUES ({', '.join('?' * len(to_row(records[0])))})", map(to_row, records))
    conn.close()


def test_migrations_are_recorded_once(tmp_path):
    db = tmp_path / "t.db"
    connect(str(db)).close()
    conn = connect(str(db))
    names = [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [m.__name__ for m in MIGRATIONS]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_run_lifecycle(tmp_path):
    store = open_store(str(tmp_path / "runs.db"))
    run_id = store.create_run("qa-eval", {"model": "endpoints:/chat", "concurrency": 8})
    store.log_params(run_id, {"targets": "answer"})
    store.log_metrics(run_id, {"exact_match/v1": 0.5, "latency/v1/mean": 12})
    store.log_table(run_id, "eval_results_table", [{"outputs": "a", "score": 1}, {"outputs": "b", "score": None}])
    store.log_artifact(run_id, "report.html", b"<html></html>")
    store.finish_run(run_id)

    run = store.get_run(run_id)
    assert run["name"] == "qa-eval"
    assert run["status"] == "FINISHED"
    assert run["end_time"] >= run["start_time"]
    assert run["params"] == {"model": "endpoints:/chat", "concurrency": 8, "targets": "answer"}
    assert run["metrics"] == {"exact_match/v1": 0.5, "latency/v1/mean": 12.0}
    assert run["tables"]["eval_results_table"][1] == {"outputs": "b", "score": None}
    assert run["artifacts"] == ["report.html"]
    assert store.get_artifact(run_id, "report.html") == b"<html></html>"
    assert store.get_table(run_id, "eval_results_table")[0]["outputs"] == "a"
    assert [r["id"] for r in store.list_runs()] == [run_id]
    store.close()


def test_failed_run_and_unknown_run(tmp_path):
    with open_store(str(tmp_path / "runs.db")) as store:
        run_id = store.create_run(None, {})
        store.finish_run(run_id, "FAILED")
        assert store.get_run(run_id)["status"] == "FAILED"
        with pytest.raises(RunNotFound):
            store.get_run("nope")
        with pytest.raises(RunNotFound):
            store.log_metrics("nope", {"x": 1.0})
        with pytest.raises(ValueError, match="invalid run status"):
            store.finish_run(run_id, "DONE")  # type: ignore[arg-type]


def test_list_traces_filters_and_paginates(tmp_path, make_record):
    db = tmp_path / "t.db"
    records = [make_record(timestamp=1000.0 + i, status=200 if i % 3 else 502) for i in range(10)]
    records.append(make_record(timestamp=1005.0, endpoint="embed"))  # same timestamp as another
    insert(db, records)
    store = open_store(str(db))

    page = store.list_traces(limit=4)
    seen = [t["id"] for t in page["traces"]]
    while page["next_cursor"]:
        page = store.list_traces(limit=4, cursor=page["next_cursor"])
        seen += [t["id"] for t in page["traces"]]
    assert sorted(seen) == sorted(r.id for r in records)
    assert len(seen) == len(set(seen))

    assert {t["endpoint"] for t in store.list_traces(endpoint="embed")["traces"]} == {"embed"}
    assert len(store.list_traces(status="error")["traces"]) == 4
    assert len(store.list_traces(status="5xx")["traces"]) == 4
    assert len(store.list_traces(status=200, endpoint="chat")["traces"]) == 6
    assert len(store.list_traces(since=1008.0)["traces"]) == 2
    assert store.count_traces() == 11

    got = store.get_trace(records[1].id)
    assert got == records[1].to_dict()
    assert store.get_trace("missing") is None
    assert len(list(store.iter_traces(page_size=3))) == 11

    assert store.prune_traces(1003.0) == 3
    assert store.count_traces() == 8
    with pytest.raises(ValueError, match="invalid status"):
        store.list_traces(status="bad")
    with pytest.raises(ValueError, match="invalid cursor"):
        store.list_traces(cursor="!!")


def test_open_store_accepts_sqlite_url_and_rejects_others(tmp_path, monkeypatch):
    store = open_store(f"sqlite:///{tmp_path}/sub/x.db")
    assert store.path == f"{tmp_path}/sub/x.db"
    store.close()
    monkeypatch.setenv("LLM_GATEWAY_TRACKING_DB", str(tmp_path / "env.db"))
    with open_store() as env_store:
        assert env_store.path == str(tmp_path / "env.db")
    with pytest.raises(ValueError, match="unsupported store"):
        open_store("mysql://x")


def test_two_connections_can_migrate_the_same_file(tmp_path):
    db = str(tmp_path / "shared.db")
    a = connect(db)
    b = connect(db)
    assert a.execute("SELECT count(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)
    a.close()
    b.close()
    plain = sqlite3.connect(db)
    assert plain.execute("SELECT count(*) FROM traces").fetchone()[0] == 0
    plain.close()
