"""Datasets load from lists, CSV, JSONL, JSON, Parquet and DataFrames into the same rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from evaluation.datasets import load_dataset
from evaluation.prompts import build_inputs, from_value, render

ROWS = [{"question": "What is 2+2?", "answer": "4"}, {"question": "Capital of France?", "answer": "Paris"}]


def write_csv(path: Path) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["question", "answer"])
        writer.writeheader()
        writer.writerows(ROWS)
    return path


def test_every_format_gives_the_same_rows_and_digest(tmp_path: Path) -> None:
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n")
    as_json = tmp_path / "d.json"
    as_json.write_text(json.dumps(ROWS))
    sources = [ROWS, write_csv(tmp_path / "d.csv"), jsonl, str(as_json)]
    loaded = [load_dataset(s) for s in sources]
    assert all(d.rows == ROWS for d in loaded)
    assert len({d.digest for d in loaded}) == 1
    assert loaded[1].columns == ["question", "answer"]


def test_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    assert load_dataset(path).rows == ROWS


def test_dataframe_with_missing_values() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"question": ["a", "b"], "score": [1.5, float("nan")], "n": [1, 2]})
    rows = load_dataset(frame).rows
    assert rows == [{"question": "a", "score": 1.5, "n": 1}, {"question": "b", "score": None, "n": 2}]
    assert type(rows[0]["n"]) is int  # numpy scalars become plain Python values


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "missing.csv")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: invalid JSON"):
        load_dataset(bad)
    with pytest.raises(ValueError, match="unknown dataset format '.txt'"):
        (tmp_path / "x.txt").write_text("")
        load_dataset(tmp_path / "x.txt")
    with pytest.raises(TypeError, match="unsupported data int"):
        load_dataset(3)


def test_inputs_single_column_mapping_and_templates() -> None:
    dataset = load_dataset([{"question": "Why?", "context": "Because.", "answer": "x"}])
    with pytest.raises(ValueError, match="several feature columns"):
        build_inputs(dataset, exclude=["answer"], col_mapping={})
    [mapped] = build_inputs(dataset, exclude=["answer"], col_mapping={"inputs": "question"})
    assert mapped.messages == [{"role": "user", "content": "Why?"}]
    [single] = build_inputs(load_dataset([{"q": "Hi", "a": "x"}]), exclude=["a"], col_mapping={})
    assert single.text == "Hi"
    chat = [{"role": "system", "content": "Use {context}"}, {"role": "user", "content": "Q: {question} {{literal}}"}]
    [templated] = build_inputs(dataset, exclude=["answer"], col_mapping={}, prompt_template=chat)
    assert templated.messages == [
        {"role": "system", "content": "Use Because."},
        {"role": "user", "content": "Q: Why? {literal}"},
    ]
    assert templated.text == "Q: Why? {literal}"
    with pytest.raises(ValueError, match="names column 'nope'"):
        render("{nope}", {"question": "x"})


def test_cell_holding_chat_messages() -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    assert from_value(messages).messages == messages
    assert from_value({"messages": messages}).text == "hello"
    assert from_value(None).text == ""
