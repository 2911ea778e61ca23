"""Reports (JSON, self-contained HTML) and the `eval` / `eval-compare` commands."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from evaluation import evaluate
from evaluation.cli import compare_runs, register
from evaluation.results import EvaluationResult
from gateway import cli as gateway_cli

ROWS = [
    {"question": "capital of France?", "answer": "Paris", "pred": "Paris"},
    {"question": "2+2?", "answer": "4", "pred": "five <b>"},
]


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="llm-gateway")
    register(root.add_subparsers(dest="command", required=True))
    return root


def cli(*argv: str) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


def test_html_report_is_self_contained_and_highlights_errors() -> None:
    result = EvaluationResult(
        metrics={"exact_match/v1": 0.5},
        table=[
            {"question": "q", "outputs": "<script>x</script>", "status": "ok", "error": None},
            {"question": "q2", "outputs": None, "status": "error", "error": "502: upstream down"},
        ],
        skipped_metrics={"toxicity/v1": "no scorer"},
    )
    page = result.to_html()
    assert page.startswith("<!doctype html>")
    assert "<script>x" not in page and "&lt;script&gt;" in page  # outputs are escaped
    assert "<tr class='error'>" in page and "502: upstream down" in page
    assert "no scorer" in page and "exact_match/v1" in page
    assert "http://" not in page and "https://" not in page  # no external assets


def test_json_report_round_trips() -> None:
    result = evaluate(ROWS, predictions="pred", targets="answer", model_type="question-answering")
    data = json.loads(result.to_json())
    assert data["metrics"]["exact_match/v1"] == 0.5
    assert data["rows"] == 2 and data["row_errors"] == 0
    assert data["table"][0]["pred"] == "Paris"
    assert data["run_id"] == result.run_id


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def test_eval_command_json_report_and_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "qa.jsonl", ROWS)
    db = str(tmp_path / "runs.db")
    report = tmp_path / "report.html"
    common = ["--data", str(data), "--targets", "answer", "--tracking-db", db, "--no-cache"]
    code = cli("eval", "--predictions", "pred", "--model-type", "question-answering", *common, "--report", str(report))
    assert code == 0
    first = capsys.readouterr().out
    assert re.search(r"^exact_match/v1 +0.5$", first, re.M)
    assert re.search(r"^toxicity/v1 +skipped: ", first, re.M)
    assert "<table>" in report.read_text()

    better = [dict(r, pred=r["answer"]) for r in ROWS]
    data2 = write_jsonl(tmp_path / "qa2.jsonl", better)
    common2 = ["--data", str(data2), "--targets", "answer", "--tracking-db", db, "--no-cache"]
    code = cli("eval", "--predictions", "pred", "--model-type", "question-answering", "--json", *common2)
    assert code == 0
    second = json.loads(capsys.readouterr().out)
    assert second["metrics"]["exact_match/v1"] == 1.0

    run_a = first.strip().splitlines()[-1].rsplit("run: ", 1)[1]
    assert cli("eval-compare", run_a, second["run_id"], "--tracking-db", db, "--json") == 0
    compared = json.loads(capsys.readouterr().out)
    row = next(m for m in compared["metrics"] if m["metric"] == "exact_match/v1")
    assert row == {"metric": "exact_match/v1", "a": 0.5, "b": 1.0, "delta": 0.5}
    assert cli("eval-compare", run_a, second["run_id"], "--tracking-db", db) == 0
    assert "+0.5" in capsys.readouterr().out
    assert cli("eval-compare", run_a, "missing", "--tracking-db", db) == 2
    # The same comparison as the issue spells it: `llm-gateway runs compare RUN_A RUN_B`.
    assert gateway_cli.main(["runs", "compare", run_a, second["run_id"], "--tracking-db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == compared


def test_eval_command_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "qa.jsonl", ROWS)
    assert cli("eval", "--predictions", "nope", "--data", str(data), "--no-tracking") == 2
    assert "predictions='nope'" in capsys.readouterr().err
    assert cli("eval", "--endpoint", "chat", "--data", str(data), "--no-tracking") == 2
    assert "no gateway URL" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser().parse_args(["eval", "--data", str(data)])  # --endpoint or --predictions is required


def test_compare_runs_handles_metrics_missing_on_one_side() -> None:
    rows = compare_runs({"metrics": {"a": 1.0, "b": 2.0}}, {"metrics": {"b": 3.0, "c": 1.0}})
    assert rows == [
        {"metric": "a", "a": 1.0, "b": None, "delta": None},
        {"metric": "b", "a": 2.0, "b": 3.0, "delta": 1.0},
        {"metric": "c", "a": None, "b": 1.0, "delta": None},
    ]
