"""End to end: evaluate through a real `llm-gateway serve` process in front of a mock upstream.

The library's numbers must equal textstat, rouge-score, tiktoken and numpy computed on the same
outputs, to 1e-6; the judge runs through the gateway too; the CLI works against the same server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

pytest.importorskip("gateway.app", reason="the gateway package is not importable")
uvicorn = pytest.importorskip("uvicorn")

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from evaluation import evaluate  # noqa: E402
from evaluation.metrics.genai import answer_similarity  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ANSWERS = {
    "What is MLflow?": "MLflow is an open-source platform for managing the machine learning lifecycle.",
    "Summarize the meeting.": "The team agreed to ship on Friday.\nQA signs off on Thursday.",
    "Capital of France?": "Paris",
    "Explain photosynthesis briefly.": "Plants turn light, water and carbon dioxide into sugar and oxygen.",
    "Why is the sky blue?": "Sunlight scatters off air molecules, and blue light scatters the most!",
}
ROWS = [
    {"question": "What is MLflow?", "answer": "MLflow is an open source platform for the ML lifecycle."},
    {"question": "Summarize the meeting.", "answer": "Ship on Friday after QA signs off on Thursday."},
    {"question": "Capital of France?", "answer": "Paris"},
    {"question": "Explain photosynthesis briefly.", "answer": "Plants make sugar from light, water and CO2."},
    {"question": "Why is the sky blue?", "answer": "Rayleigh scattering of sunlight by air molecules."},
]
TOL = 1e-6


async def upstream_chat(request: Request) -> JSONResponse:
    body = json.loads(await request.body())
    prompt = str(body["messages"][-1]["content"])
    if body["model"] == "judge-model":
        text = (
            "score: 5\njustification: Same meaning." if "Paris" in prompt else "**Score:** 3\n**Justification:** Close."
        )
    else:
        text = ANSWERS.get(prompt, "I don't know.")
    message = {"role": "assistant", "content": text}
    return JSONResponse(
        {
            "id": "chatcmpl-e2e",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
        }
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def upstream_port() -> Iterator[int]:
    port = free_port()
    app = Starlette(routes=[Route("/v1/chat/completions", upstream_chat, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "mock upstream did not start"
        time.sleep(0.02)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def gateway_url(upstream_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("eval-e2e")
    base = f"http://127.0.0.1:{upstream_port}/v1"
    endpoints = "".join(
        f"""
  - name: {name}
    endpoint_type: llm/v1/chat
    model:
      provider: openai
      name: {model}
      config: {{openai_api_key: test, openai_api_base: "{base}"}}
"""
        for name, model in (("chat", "gpt-test"), ("judge", "judge-model"))
    )
    config = work / "gateway.yaml"
    config.write_text("endpoints:" + endpoints)
    port = free_port()
    env = {**os.environ, "LLM_GATEWAY_TRACKING_DB": str(work / "traces.db")}
    command = [str(ROOT / ".venv" / "bin" / "llm-gateway"), "serve", "--config", str(config)]
    if not Path(command[0]).exists():
        command[0:1] = [sys.executable, "-m", "gateway.cli"]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else "gateway exited"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "gateway did not become healthy"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)
        if process.stderr:
            process.stderr.close()


def references(outputs: list[str], targets: list[str]) -> dict[str, list[float]]:
    import textstat
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=False)
    rouge = [scorer.score(t, o) for o, t in zip(outputs, targets, strict=True)]
    return {
        "flesch_kincaid_grade_level/v1": [textstat.flesch_kincaid_grade(o) for o in outputs],
        "ari_grade_level/v1": [textstat.automated_readability_index(o) for o in outputs],
        **{f"{k}/v1": [r[k].fmeasure for r in rouge] for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")},
    }


def test_evaluate_through_a_real_gateway_matches_reference_values(gateway_url: str, tmp_path: Path) -> None:
    result = evaluate(
        ROWS,
        model="endpoints:/chat",
        targets="answer",
        model_type="text-summarization",
        extra_metrics=[answer_similarity(model="endpoints:/judge")],
        gateway_url=gateway_url,
        tracking_uri=str(tmp_path / "runs.db"),
    )
    outputs = [row["outputs"] for row in result.table]
    assert outputs == [ANSWERS[r["question"]] for r in ROWS]
    assert all(row["status"] == "ok" for row in result.table)
    assert result.metric_errors == {}

    for key, scores in references(outputs, [r["answer"] for r in ROWS]).items():
        assert [row[f"{key}/score"] for row in result.table] == pytest.approx(scores, abs=TOL), key
        assert result.metrics[f"{key}/mean"] == pytest.approx(np.mean(scores), abs=TOL)
        assert result.metrics[f"{key}/variance"] == pytest.approx(np.var(scores), abs=TOL)
        assert result.metrics[f"{key}/p90"] == pytest.approx(np.percentile(scores, 90), abs=TOL)

    tiktoken = pytest.importorskip("tiktoken")
    del tiktoken
    from tests.unit.evaluation.test_eval_reference import tiktoken_cl100k

    encoding = tiktoken_cl100k()
    assert [row["token_count"] for row in result.table] == [len(encoding.encode_ordinary(o)) for o in outputs]

    judge = [row["answer_similarity/v1/score"] for row in result.table]
    assert judge == [3, 3, 5, 3, 3]
    assert result.metrics["answer_similarity/v1/mean"] == pytest.approx(np.mean(judge))
    assert result.metrics["answer_similarity/v1/count"] == 5.0
    latencies = [row["latency"] for row in result.table]
    assert result.metrics["latency/mean"] == pytest.approx(np.mean(latencies), abs=TOL)
    assert result.run_id is not None


def test_cli_eval_against_the_real_gateway(gateway_url: str, tmp_path: Path) -> None:
    data = tmp_path / "qa.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in ROWS))
    report = tmp_path / "report.html"
    env = {**os.environ, "LLM_GATEWAY_URL": gateway_url, "LLM_GATEWAY_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "gateway.cli", "eval", "--endpoint", "chat", "--data", str(data)]
    options = ["--targets", "answer", "--model-type", "question-answering", "--json", "--report", str(report)]
    done = subprocess.run(
        [*command, *options, "--tracking-db", str(tmp_path / "runs.db")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    assert out["metrics"]["exact_match/v1"] == pytest.approx(1 / 5)  # only "Paris" matches
    assert out["row_errors"] == 0
    assert "<table>" in report.read_text()
