"""The mlflow sink and export_run against a real `mlflow server` (SQLite backend, local artifact root).

The full `mlflow` package (the server) is not in the dev extra: it brings ~300 MB of scipy,
scikit-learn and matplotlib and pins pyarrow below the version the evaluation extra uses. The
fixture installs it once into its own venv under /tmp (same version as the mlflow-skinny client in
.venv, reused by later runs) and starts one server for the module. Without PyPI the tests skip,
except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

pytest.importorskip("opentelemetry.exporter.otlp.proto.common")

from tracking import TrackingSettings, build_writer
from tracking.records import TraceRecord, Usage
from tracking.sinks.mlflow import MlflowError, MlflowSink, export_run
from tracking.spans import span_ids

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SERVER_VERSION = importlib.metadata.version("mlflow-skinny")
VENV = Path(tempfile.gettempdir()) / f"llm-gateway-mlflow-server-{SERVER_VERSION}"
_UNREACHABLE = (
    "No matching distribution",
    "Could not find a version",
    "NewConnectionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Connection refused",
)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"mlflow server unavailable in CI: {reason}")
    pytest.skip(reason)


def server_python() -> Path:
    """A venv with the full `mlflow` package, built once and shared by later runs (a file lock serialises builders)."""
    python = VENV / "bin" / "python"
    ready = VENV / ".ready"
    if ready.exists():
        return python
    with open(f"{VENV}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():  # another test session built it while we waited
            return python
        shutil.rmtree(VENV, ignore_errors=True)  # a half-built venv from an interrupted run
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True)
        install = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"mlflow=={SERVER_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if install.returncode != 0:
            output = (install.stdout + install.stderr)[-2000:]
            shutil.rmtree(VENV, ignore_errors=True)
            if any(marker in output for marker in _UNREACHABLE):
                _unavailable(f"cannot install mlflow=={SERVER_VERSION} from PyPI (unreachable?): {output[-300:]}")
            pytest.fail(f"installing mlflow=={SERVER_VERSION} for the test server failed:\n{output}")
        ready.touch()
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    python = server_python()
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OTEL_"))}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no background job workers: faster start, fewer processes
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [
            str(python),
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: teardown stops the server and its workers
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"mlflow server exited with {process.returncode}:\n{(root / 'server.log').read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start in 120 s:\n{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.25)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def api(url: str, method: str, path: str, **kwargs) -> dict:
    response = httpx.request(method, f"{url}{path}", timeout=10, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def experiment_id(url: str, name: str) -> str:
    return api(url, "GET", "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": name})["experiment"][
        "experiment_id"
    ]


def search_traces(url: str, experiment: str) -> list[dict]:
    """Every trace of the experiment (v3 search API), oldest first."""
    body = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment}}]}
    traces, token = [], None
    while True:
        page = api(url, "POST", "/api/3.0/mlflow/traces/search", json={**body, "max_results": 500, "page_token": token})
        traces.extend(page.get("traces", []))
        token = page.get("next_page_token")
        if not token:
            return sorted(traces, key=lambda t: t["request_time"])


def get_trace(url: str, trace: str):
    """The trace with its spans, read back with MLflow's own client."""
    mlflow = pytest.importorskip("mlflow")
    return mlflow.MlflowClient(tracking_uri=url, registry_uri=url).get_trace(trace)


def trace_id(record_id: str) -> str:
    return f"tr-{span_ids(record_id)[0]:032x}"


def record(i: int, **overrides) -> TraceRecord:
    fields = {
        "id": f"mlf-{i:06d}",
        "timestamp": time.time() - 60 + i * 0.001,
        "endpoint": "chat",
        "endpoint_type": "llm/v1/chat",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "route": "/v1/chat/completions",
        "stream": False,
        "status": 200,
        "request": {"messages": [{"role": "user", "content": f"question {i}"}], "temperature": 0.2},
        "response": {
            "id": f"chatcmpl-{i}",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": f"answer {i}"}, "finish_reason": "stop"}
            ],
        },
        "usage": Usage(10 + i, 2, 12 + i),
        "latency_ms": 250.0,
        "response_model": "gpt-4o-mini-2024-07-18",
        "upstream_id": f"chatcmpl-{i}",
        "finish_reason": "stop",
    }
    fields.update(overrides)
    return TraceRecord(**fields)


async def test_calls_become_mlflow_traces_with_inputs_outputs_and_usage(mlflow_server):
    sink = MlflowSink(mlflow_server, experiment="gw-traces")
    await sink.open()
    ok = record(1)
    failed = record(
        2, status=502, response=None, error={"type": "upstream_error", "message": "bad gateway"}, usage=Usage()
    )
    await sink.write([ok, failed])
    await sink.write([ok])  # a replay: same trace id, not a second trace
    await sink.aclose()

    traces = search_traces(mlflow_server, experiment_id(mlflow_server, "gw-traces"))
    assert [t["trace_id"] for t in traces] == [trace_id(ok.id), trace_id(failed.id)]
    first, second = traces
    assert first["state"] == "OK"
    assert second["state"] == "ERROR"
    assert first["request_preview"] == "question 1"
    assert first["response_preview"] == "answer 1"
    assert (
        first["trace_metadata"]["mlflow.trace.tokenUsage"]
        == '{"input_tokens": 11, "output_tokens": 2, "total_tokens": 13}'
    )
    assert first["tags"]["llm_gateway.endpoint"] == "chat"
    assert first["execution_duration"] == "0.250s", first

    [span] = get_trace(mlflow_server, trace_id(ok.id)).data.spans
    attrs = span.attributes
    assert span.name == "chat gpt-4o-mini"
    assert span.inputs == ok.request
    assert span.outputs == ok.response
    assert attrs["mlflow.spanType"] == "CHAT_MODEL"
    assert attrs["mlflow.spanInputs"] == ok.request
    assert attrs["mlflow.spanOutputs"] == ok.response
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert attrs["gen_ai.usage.input_tokens"] == 11
    assert attrs["llm_gateway.record_id"] == ok.id


async def test_writer_spools_while_mlflow_is_unreachable_then_replays(mlflow_server, tmp_path):
    # Point the sink at a closed port first (the server "down"), then at the real one ("back").
    settings = TrackingSettings.model_validate(
        {
            "sinks": [{"type": "mlflow", "tracking_uri": f"http://127.0.0.1:{free_port()}", "experiment": "gw-outage"}],
            "spool_dir": str(tmp_path / "spool"),
            "batch_size": 50,
        }
    )
    writer = build_writer(settings)
    writer.retry_delay = 0.0
    writer.max_sink_backoff = 0.0
    await writer.start()  # open() only warns: the server is unreachable
    for i in range(100, 200):
        writer.submit(record(i))
    await writer.flush()
    assert writer.spilled == 100
    sink = writer.sink
    assert isinstance(sink, MlflowSink)
    sink.tracking_uri = mlflow_server
    await sink._http.aclose()
    sink._http = httpx.AsyncClient(base_url=mlflow_server, timeout=10)
    for i in range(200, 250):
        writer.submit(record(i))
    await writer.aclose()  # drains the queue and replays the spool now that the server answers

    traces = search_traces(mlflow_server, experiment_id(mlflow_server, "gw-outage"))
    assert sorted(t["trace_id"] for t in traces) == sorted(trace_id(f"mlf-{i:06d}") for i in range(100, 250))
    assert writer.dropped == 0
    assert not list((tmp_path / "spool").glob("*.jsonl*"))


async def test_content_capture_off_sends_no_inputs_or_outputs(mlflow_server):
    sink = MlflowSink(mlflow_server, experiment="gw-metadata", capture_content=False)
    r = record(300)
    await sink.write([r])
    await sink.aclose()
    [span] = get_trace(mlflow_server, trace_id(r.id)).data.spans
    text = orjson.dumps(span.attributes).decode()
    assert "question" not in text
    assert "answer" not in text
    assert span.attributes["gen_ai.usage.output_tokens"] == 2


def test_export_run_logs_params_metrics_and_the_eval_table(mlflow_server):
    rows = [
        {"inputs": "What is MLflow?", "outputs": "A platform.", "targets": "A platform.", "exact_match/v1/score": 1.0},
        {"inputs": "2+2?", "outputs": "5", "targets": "4", "exact_match/v1/score": 0.0, "token_count": 1},
    ]
    store_run = {
        "id": "our-run-1",
        "name": "eval chat on qa.csv",
        "status": "FINISHED",
        "start_time": time.time() - 30,
        "end_time": time.time(),
        "params": {"model": "endpoints:/chat", "dataset": "qa.csv", "row_errors": [], "concurrency": 8},
        "metrics": {"exact_match/v1": 0.5, "latency/v1/mean": 0.25, "toxicity/v1/mean": None},
        "tables": {"eval_results_table": rows},
        "artifacts": ["report.json"],
    }
    run_id = export_run(store_run, mlflow_server, "gw-eval", artifacts={"report.json": b'{"ok": true}'})
    assert export_run(store_run, mlflow_server, "gw-eval") == run_id  # idempotent by our run id

    run = api(mlflow_server, "GET", "/api/2.0/mlflow/runs/get", params={"run_id": run_id})["run"]
    assert run["info"]["status"] == "FINISHED"
    assert run["info"]["run_name"] == "eval chat on qa.csv"
    assert run["info"]["experiment_id"] == experiment_id(mlflow_server, "gw-eval")
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params == {"model": "endpoints:/chat", "dataset": "qa.csv", "row_errors": "[]", "concurrency": "8"}
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert metrics == {"exact_match/v1": 0.5, "latency/v1/mean": 0.25}
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert orjson.loads(tags["mlflow.loggedArtifacts"]) == [{"path": "eval_results_table.json", "type": "table"}]
    assert tags["llm_gateway.run_id"] == "our-run-1"

    listed = api(mlflow_server, "GET", "/api/2.0/mlflow/artifacts/list", params={"run_id": run_id})
    assert sorted(f["path"] for f in listed["files"]) == ["eval_results_table.json", "report.json"]
    artifact_root = run["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
    table = httpx.get(f"{mlflow_server}/api/2.0/mlflow-artifacts/artifacts/{artifact_root}/eval_results_table.json")
    assert table.json() == {
        "columns": ["inputs", "outputs", "targets", "exact_match/v1/score", "token_count"],
        "data": [
            ["What is MLflow?", "A platform.", "A platform.", 1.0, None],
            ["2+2?", "5", "4", 0.0, 1],
        ],
    }


def test_export_run_from_the_store_reads_back_with_the_mlflow_client(mlflow_server, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    # The client resolves `mlflow-artifacts:/` run artifacts through the tracking URI in the environment.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    from tracking.store import open_store

    with open_store(str(tmp_path / "traces.db")) as store:
        run = store.create_run("stored eval", {"model": "endpoints:/chat"})
        store.log_metrics(run, {"exact_match/v1": 1.0})
        store.log_table(run, "eval_results_table", [{"inputs": "q", "outputs": "a"}])
        store.finish_run(run)
        stored = store.get_run(run)
    run_id = export_run(stored, mlflow_server, "gw-eval-client")
    client = mlflow.MlflowClient()
    got = client.get_run(run_id)
    assert got.data.metrics == {"exact_match/v1": 1.0}
    assert got.data.params == {"model": "endpoints:/chat"}
    table = client.load_table(got.info.experiment_id, "eval_results_table.json", run_ids=[run_id])
    assert table[["inputs", "outputs"]].to_dict("records") == [{"inputs": "q", "outputs": "a"}]


def test_runs_export_command(mlflow_server, tmp_path, capsys):
    from gateway import cli
    from tracking.store import open_store

    db = str(tmp_path / "traces.db")
    with open_store(db) as store:
        run = store.create_run("cli eval", {"model": "endpoints:/chat"})
        store.log_metrics(run, {"exact_match/v1": 0.5})
        store.finish_run(run)
    assert cli.main(["runs", "export", run, "--db", db, "--mlflow", mlflow_server, "--experiment", "gw-cli"]) == 0
    mlflow_run = capsys.readouterr().out.split("MLflow run ")[1].split()[0]
    got = api(mlflow_server, "GET", "/api/2.0/mlflow/runs/get", params={"run_id": mlflow_run})
    assert {m["key"]: m["value"] for m in got["run"]["data"]["metrics"]} == {"exact_match/v1": 0.5}
    assert cli.main(["runs", "export", "missing", "--db", db, "--mlflow", mlflow_server]) == 1


def test_export_run_names_the_server_error(mlflow_server):
    with pytest.raises(MlflowError, match="HTTP 4"):
        export_run({"id": "bad", "metrics": {"m": 1.0}, "params": {"k" * 300: "v"}}, mlflow_server, "gw-eval-bad")
