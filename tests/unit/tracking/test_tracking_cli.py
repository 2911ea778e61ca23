from __future__ import annotations

import argparse
import csv
import io

import orjson
import pytest

from tracking import cli
from tracking.migrations import connect
from tracking.rows import TRACE_COLUMNS, to_row
from tracking.store import open_store


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="llm-gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def db(tmp_path, make_record):
    path = tmp_path / "t.db"
    conn = connect(str(path))
    records = [
        make_record(id=f"t{i}", timestamp=1_700_000_000.0 + i, status=200 if i < 4 else 502, endpoint="chat")
        for i in range(6)
    ]
    conn.executemany(
        f"INSERT INTO traces ({', '.join(TRACE_COLUMNS)}) VALUES ({', '.join('?' * len(TRACE_COLUMNS))})",
        map(to_row, records),
    )
    conn.close()
    return str(path)


def test_traces_list_and_filters(db, capsys):
    assert run("traces", "list", "--db", db) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["ID", "TIME", "ENDPOINT", "STATUS", "MODEL", "TOKENS", "MS"]
    assert out.splitlines()[1].startswith("t5")
    assert run("traces", "list", "--db", db, "--status", "error", "--json") == 0
    page = orjson.loads(capsys.readouterr().out)
    assert [t["id"] for t in page["traces"]] == ["t5", "t4"]
    assert run("traces", "list", "--db", db, "--limit", "2") == 0
    assert "--cursor" in capsys.readouterr().out
    assert run("traces", "list", "--db", db, "--since", "yesterday") == 1
    assert "invalid time" in capsys.readouterr().err


def test_traces_show(db, capsys):
    assert run("traces", "show", "t1", "--db", db) == 0
    assert orjson.loads(capsys.readouterr().out)["id"] == "t1"
    assert run("traces", "show", "nope", "--db", db) == 1
    assert "no trace" in capsys.readouterr().err


def test_traces_export_jsonl_and_csv(db, tmp_path, capsys):
    assert run("traces", "export", "--db", db, "--endpoint", "chat") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [orjson.loads(line)["id"] for line in lines] == [f"t{i}" for i in range(5, -1, -1)]
    target = tmp_path / "out.csv"
    assert run("traces", "export", "--db", db, "--format", "csv", "-o", str(target)) == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 6
    assert orjson.loads(rows[0]["request"])["messages"][0]["content"] == "hello"
    assert rows[0]["total_tokens"] == "4"


def test_traces_prune(db, capsys):
    assert run("traces", "prune", "--db", db, "--older-than", "1d") == 0
    assert "deleted 6 trace(s)" in capsys.readouterr().out
    assert run("traces", "prune", "--db", db, "--older-than", "soon") == 1


def test_runs_list_and_show(tmp_path, capsys):
    db = str(tmp_path / "runs.db")
    with open_store(db) as store:
        run_id = store.create_run("nightly", {"k": 1})
        store.log_metrics(run_id, {"exact_match/v1": 1.0})
        store.log_table(run_id, "eval_results_table", [{"outputs": "x"}] * 3)
        store.finish_run(run_id)
    assert run("runs", "list", "--db", db) == 0
    assert "nightly" in capsys.readouterr().out
    assert run("runs", "show", run_id, "--db", db) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert shown["metrics"] == {"exact_match/v1": 1.0}
    assert shown["tables"] == {"eval_results_table": "3 row(s)"}
    assert run("runs", "show", run_id, "--db", db, "--json") == 0
    assert len(orjson.loads(capsys.readouterr().out)["tables"]["eval_results_table"]) == 3
    assert run("runs", "show", "missing", "--db", db) == 1


def test_db_comes_from_env_then_config(tmp_path, monkeypatch):
    config = tmp_path / "gateway.yaml"
    config.write_text(f"endpoints: []\ntracking:\n  sinks:\n    - {{type: sqlite, path: {tmp_path}/from-config.db}}\n")
    args = argparse.Namespace(db=None, config=str(config))
    monkeypatch.delenv("LLM_GATEWAY_TRACKING_DB", raising=False)
    assert cli.resolve_db(args) == f"{tmp_path}/from-config.db"
    monkeypatch.setenv("LLM_GATEWAY_TRACKING_DB", "env.db")
    assert cli.resolve_db(args) == "env.db"
    monkeypatch.delenv("LLM_GATEWAY_TRACKING_DB")
    monkeypatch.delenv("LLM_GATEWAY_CONFIG", raising=False)
    assert cli.resolve_db(argparse.Namespace(db=None, config=None)) == "llm-gateway-traces.db"
