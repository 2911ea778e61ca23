"""evaluate() against a gateway endpoint: outputs, latency, row errors, timeouts, concurrency, resume."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from evaluation import evaluate_async, make_metric
from evaluation.metrics.builtin import latency
from tests.unit.evaluation.eval_fakes import GATEWAY_URL, FakeGateway, Reply, echo
from tracking.store import open_store

pytestmark = pytest.mark.anyio

QA = [
    {"question": "paris", "answer": "PARIS"},
    {"question": "berlin", "answer": "BERLIN"},
    {"question": "rome", "answer": "Roma"},
]


async def run(gateway: FakeGateway, rows: list[dict[str, Any]] = QA, **kwargs: Any) -> Any:
    kwargs.setdefault("model", "endpoints:/chat")
    kwargs.setdefault("gateway_url", GATEWAY_URL)
    kwargs.setdefault("targets", "answer" if rows is QA else None)
    return await evaluate_async(rows, transport=httpx.ASGITransport(app=gateway.app), **kwargs)


async def test_endpoint_rows_become_outputs_with_latency_and_mlflow_columns(tmp_path: Path) -> None:
    gateway = FakeGateway()
    result = await run(
        gateway,
        targets="answer",
        model_type="question-answering",
        extra_metrics=[latency()],
        inference_params={"temperature": 0},
    )
    assert gateway.requests[0] == {
        "model": "chat",
        "messages": [{"role": "user", "content": "paris"}],
        "temperature": 0,
    }
    assert [row["outputs"] for row in result.table] == ["PARIS", "BERLIN", "ROME"]
    assert result.metrics["exact_match/v1"] == pytest.approx(2 / 3)
    row = result.table[0]
    assert {"question", "answer", "outputs", "token_count", "latency", "status", "error"} <= set(row)
    assert row["status"] == "ok" and row["error"] is None and row["latency"] >= 0
    assert {"latency/mean", "latency/variance", "latency/p90"} <= set(result.metrics)
    assert result.tables["eval_results_table"] is result.table


async def test_failed_rows_are_errors_and_metrics_use_the_others() -> None:
    def script(body: dict[str, Any]) -> Reply:
        if body["messages"][-1]["content"] == "berlin":
            return Reply("model refused", 400)
        return echo(body)

    result = await run(FakeGateway(script), targets="answer", model_type="question-answering")
    statuses = [(row["status"], row["error"]) for row in result.table]
    assert statuses == [("ok", None), ("error", "400: model refused"), ("ok", None)]
    assert result.row_errors == 1
    assert result.table[1]["outputs"] is None and result.table[1]["token_count"] is None
    assert result.metrics["exact_match/v1"] == 0.5  # PARIS matches, ROME does not; berlin not scored


async def test_per_row_timeout_covers_a_hung_call() -> None:
    def script(body: dict[str, Any]) -> Reply:
        return Reply(hang=True) if body["messages"][-1]["content"] == "rome" else echo(body)

    result = await run(FakeGateway(script), row_timeout=0.2, log_to_tracking=False)
    assert [row["status"] for row in result.table] == ["ok", "ok", "error"]
    assert result.table[2]["error"] == "timeout: no answer within 0.2s"


async def test_concurrency_is_bounded() -> None:
    gateway = FakeGateway()
    rows = [{"q": f"question {i}"} for i in range(40)]
    await run(gateway, rows, concurrency=4, log_to_tracking=False, progress=True)  # rich bar, forced on
    assert len(gateway.requests) == 40
    assert 1 < gateway.max_in_flight <= 4


async def test_interrupted_run_resumes_from_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "responses.sqlite"
    failing = {"berlin"}

    def script(body: dict[str, Any]) -> Reply:
        text = body["messages"][-1]["content"]
        return Reply("upstream down", 502) if text in failing else echo(body)

    first_gateway = FakeGateway(script)
    first = await run(first_gateway, cache=cache, retries=0, log_to_tracking=False)
    assert [row["status"] for row in first.table] == ["ok", "error", "ok"]

    failing.clear()  # the upstream is back: only the failed row is sent again
    second_gateway = FakeGateway(script)
    second = await run(second_gateway, cache=cache, retries=0, log_to_tracking=False)
    assert [b["messages"][-1]["content"] for b in second_gateway.requests] == ["berlin"]
    assert [row["status"] for row in second.table] == ["ok", "ok", "ok"]
    assert [row["cached"] for row in second.table] == [True, False, True]

    third_gateway = FakeGateway(script)
    await run(third_gateway, cache=cache, log_to_tracking=False)
    assert third_gateway.requests == []


async def test_prompt_template_and_chat_template() -> None:
    gateway = FakeGateway()
    rows = [{"question": "why", "context": "because", "answer": "x"}]
    await run(gateway, rows, targets="answer", prompt_template="Q: {question} C: {context}", log_to_tracking=False)
    chat = [{"role": "system", "content": "ctx={context}"}, {"role": "user", "content": "{question}?"}]
    await run(gateway, rows, targets="answer", prompt_template=chat, log_to_tracking=False)
    assert gateway.requests[0]["messages"] == [{"role": "user", "content": "Q: why C: because"}]
    assert gateway.requests[1]["messages"] == [
        {"role": "system", "content": "ctx=because"},
        {"role": "user", "content": "why?"},
    ]


async def test_callable_models_sync_and_async() -> None:
    async def shout(question: str) -> str:
        await asyncio.sleep(0)
        return question.upper()

    def broken(question: str) -> str:
        raise RuntimeError(f"cannot answer {question}")

    good = await evaluate_async(QA, model=shout, targets="answer", model_type="question-answering")
    assert [row["outputs"] for row in good.table] == ["PARIS", "BERLIN", "ROME"]
    assert good.params["model"] == "shout"
    bad = await evaluate_async(QA, model=broken, targets="answer", log_to_tracking=False)
    assert bad.table[0]["error"] == "RuntimeError: cannot answer paris"


async def test_dataframe_model_contract_like_mlflow() -> None:
    pytest.importorskip("pandas")
    batches: list[int] = []

    def model(frame: Any) -> list[str]:
        batches.append(len(frame))
        return [q.upper() for q in frame["question"]]

    result = await evaluate_async(
        QA, model=model, targets="answer", evaluator_config={"model_input": "dataframe"}, log_to_tracking=False
    )
    assert batches == [3]
    assert [row["outputs"] for row in result.table] == ["PARIS", "BERLIN", "ROME"]


async def test_run_is_stored_in_tracking(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    result = await run(FakeGateway(), targets="answer", model_type="question-answering", tracking_uri=str(db))
    assert result.run_id is not None and result.tracking_error is None
    with open_store(str(db)) as store:
        run_record = store.get_run(result.run_id)
        assert run_record["status"] == "FINISHED"
        assert run_record["metrics"]["exact_match/v1"] == pytest.approx(2 / 3)
        assert run_record["params"]["model"] == "endpoints:/chat"
        assert run_record["params"]["dataset_digest"] == result.params["dataset_digest"]
        assert "exact_match/v1" in run_record["params"]["metrics"]
        assert store.get_table(result.run_id, "eval_results_table") == result.table
        assert b'"row_errors"' in store.get_artifact(result.run_id, "report.json")


async def test_argument_errors() -> None:
    with pytest.raises(ValueError, match="pass model="):
        await evaluate_async(QA)
    with pytest.raises(ValueError, match="targets='nope' is not a column"):
        await evaluate_async(QA, predictions="answer", targets="nope")
    with pytest.raises(ValueError, match="no gateway URL"):
        await evaluate_async(QA, model="endpoints:/chat")
    with pytest.raises(ValueError, match="unknown model_type 'classifier'"):
        await evaluate_async(QA, predictions="answer", model_type="classifier")


async def test_latency_without_a_model_is_skipped_with_reason() -> None:
    result = await evaluate_async(QA, predictions="answer", extra_metrics=[latency()], log_to_tracking=False)
    assert result.skipped_metrics == {"latency": "no model was called (static predictions)"}
    assert not [k for k in result.metrics if k.startswith("latency")]


async def test_metric_sees_only_answered_rows() -> None:
    seen: list[list[str]] = []

    def record(predictions: Any) -> float:
        seen.append(list(predictions))
        return 1.0

    def script(body: dict[str, Any]) -> Reply:
        return Reply("nope", 400) if body["messages"][-1]["content"] == "rome" else echo(body)

    await run(
        FakeGateway(script),
        extra_metrics=[make_metric(eval_fn=record, greater_is_better=True, name="r")],
        log_to_tracking=False,
    )
    assert seen == [["PARIS", "BERLIN"]]
