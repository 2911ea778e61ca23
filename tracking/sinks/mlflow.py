"""Export to an MLflow tracking server over its REST API: calls as MLflow traces, evaluation runs as runs.

Install with `pip install 'llm-gateway[mlflow]'` (OpenTelemetry only; no MLflow package is needed on
the gateway side). Needs an MLflow server >= 3.6 for traces, which ingests OTLP/HTTP at
`POST /v1/traces` with the experiment in the `x-mlflow-experiment-id` header:

- `MlflowSink` (`sinks: [{type: mlflow, tracking_uri: http://127.0.0.1:5000, experiment: llm-gateway}]`)
  sends each batch of calls as GenAI spans (built by `tracking.spans`, exactly like the `otlp`
  sink) plus MLflow's own span inputs/outputs, so the MLflow UI shows the request and the answer.
  Span ids derive from the record id: a replayed record lands on the same MLflow trace.
- `export_run(store_run, tracking_uri, experiment)` copies one evaluation run from our store
  (`Store.get_run(...)`) to an MLflow run: params, metrics, each table as an MLflow table artifact
  (`eval_results_table.json`, listed in the `mlflow.loggedArtifacts` tag so the Evaluation tab
  shows it) and any other artifacts. It is idempotent by our run id.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from tracking.config import MlflowSinkSettings
from tracking.records import TraceRecord
from tracking.sink import register_sink
from tracking.spans import make_resource, record_spans

logger = logging.getLogger("tracking")

try:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
except ImportError:  # pragma: no cover - exercised only without the extra installed
    encode_spans = None

EXPERIMENT_HEADER = "x-mlflow-experiment-id"
OTLP_TRACES_PATH = "/v1/traces"
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"
RUN_ID_TAG = "llm_gateway.run_id"  # our run id on the MLflow run: makes export_run idempotent
TRACE_TAG_PREFIX = "mlflow.traceTag."
# MLflow's limits per log-batch request and per param value.
_MAX_PARAMS, _MAX_METRICS, _MAX_PARAM_CHARS = 100, 1000, 6000


class MlflowError(RuntimeError):
    """Raised when the MLflow server refuses a request; the message carries its error code and text."""


class MlflowClient:
    """The few MLflow REST calls we need, synchronous (httpx); one per sink or export."""

    def __init__(self, tracking_uri: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        self.tracking_uri = tracking_uri.rstrip("/")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.tracking_uri, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MlflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise MlflowError(f"{method} {path}: HTTP {response.status_code}: {_error_text(response)}")
        if not response.content:
            return {}
        data: dict[str, Any] = response.json()
        return data

    def experiment_id(self, name: str) -> str:
        """The id of experiment `name`, creating it when it does not exist."""
        for _ in range(2):
            try:
                found = self.call("GET", "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": name})
                return str(found["experiment"]["experiment_id"])
            except MlflowError as exc:
                if "RESOURCE_DOES_NOT_EXIST" not in str(exc):
                    raise
            try:
                return str(
                    self.call("POST", "/api/2.0/mlflow/experiments/create", json={"name": name})["experiment_id"]
                )
            except MlflowError as exc:
                if "RESOURCE_ALREADY_EXISTS" not in str(exc):  # another gateway created it meanwhile
                    raise
        raise MlflowError(f"experiment {name!r} could neither be found nor created")


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict) and ("error_code" in body or "message" in body):
        return f"{body.get('error_code', '')}: {body.get('message', '')}".strip(": ")
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return response.text[:500]


def _mlflow_attributes(record: TraceRecord) -> dict[str, Any]:
    """MLflow's own span inputs/outputs (the UI's request/response view) and a filterable trace tag."""
    attrs: dict[str, Any] = {f"{TRACE_TAG_PREFIX}llm_gateway.endpoint": record.endpoint}
    if record.request is not None:
        attrs["mlflow.spanInputs"] = record.request  # a mapping: sent as an OTLP kvlist, stored as JSON
    outputs = record.response if record.response is not None else record.error
    if outputs is not None:
        attrs["mlflow.spanOutputs"] = outputs
    return attrs


def _no_content(record: TraceRecord) -> dict[str, Any]:
    return {f"{TRACE_TAG_PREFIX}llm_gateway.endpoint": record.endpoint}


@register_sink("mlflow")
class MlflowSink:
    """Each batch is one OTLP/HTTP protobuf request to `{tracking_uri}/v1/traces`."""

    def __init__(
        self,
        tracking_uri: str = "http://127.0.0.1:5000",
        *,
        experiment: str = "llm-gateway",
        experiment_id: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        capture_content: bool = True,
    ) -> None:
        if encode_spans is None:
            raise RuntimeError("the mlflow sink needs OpenTelemetry: pip install 'llm-gateway[mlflow]'")
        self.tracking_uri = tracking_uri.rstrip("/")
        self.experiment = experiment
        self.experiment_id = experiment_id
        self.capture_content = capture_content
        self.resource = make_resource("llm-gateway")
        self._token = token
        self._timeout = timeout
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=self.tracking_uri, headers=headers, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: MlflowSinkSettings) -> MlflowSink:
        return cls(
            settings.tracking_uri,
            experiment=settings.experiment,
            experiment_id=settings.experiment_id,
            token=settings.token.get_secret_value() if settings.token is not None else None,
            timeout=settings.timeout,
            capture_content=settings.capture_content,
        )

    def __repr__(self) -> str:  # never show the token
        return f"MlflowSink(tracking_uri={self.tracking_uri!r}, experiment={self.experiment!r})"

    def _resolve_experiment(self) -> str:
        with MlflowClient(self.tracking_uri, token=self._token, timeout=self._timeout) as client:
            return client.experiment_id(self.experiment)

    async def _experiment_id(self) -> str:
        if self.experiment_id is None:
            self.experiment_id = await asyncio.to_thread(self._resolve_experiment)
        return self.experiment_id

    async def open(self) -> None:
        """Find or create the experiment now; a server that is down now is retried on the first write."""
        try:
            await self._experiment_id()
        except (httpx.HTTPError, MlflowError) as exc:
            logger.warning("tracking: mlflow at %s is not usable yet (%s); records will spool", self.tracking_uri, exc)

    async def write(self, records: Sequence[TraceRecord]) -> None:
        if not records:
            return
        experiment_id = await self._experiment_id()
        hook = _mlflow_attributes if self.capture_content else _no_content
        spans = record_spans(records, self.resource, capture_content=self.capture_content, extra_attributes=hook)
        body = encode_spans(spans).SerializeToString()
        response = await self._http.post(
            OTLP_TRACES_PATH,
            content=body,
            headers={"content-type": "application/x-protobuf", EXPERIMENT_HEADER: experiment_id},
        )
        if response.status_code >= 400:
            raise MlflowError(f"POST {OTLP_TRACES_PATH}: HTTP {response.status_code}: {_error_text(response)}")

    async def aclose(self) -> None:
        await self._http.aclose()


# --- evaluation runs ----------------------------------------------------------------------------


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text[:_MAX_PARAM_CHARS]


def table_json(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """Rows -> MLflow's table artifact format (pandas `orient="split"` without the index)."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    data = [[row.get(c) for c in columns] for row in rows]
    return orjson.dumps({"columns": columns, "data": data}, option=orjson.OPT_SERIALIZE_NUMPY, default=str)


def _artifact_path(artifact_uri: str, name: str) -> str:
    """`mlflow-artifacts:/1/<run>/artifacts` + name -> the server's artifact-proxy URL path."""
    parsed = urllib.parse.urlparse(artifact_uri)
    if parsed.scheme != "mlflow-artifacts":
        raise MlflowError(
            f"the run's artifact location {artifact_uri!r} is not served by the tracking server; "
            "start `mlflow server` with artifact proxying (the default; --artifacts-destination DIR)"
        )
    path = parsed.path.strip("/")
    return "/api/2.0/mlflow-artifacts/artifacts/" + urllib.parse.quote(f"{path}/{name}")


def _batches(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def export_run(
    store_run: Mapping[str, Any],
    tracking_uri: str,
    experiment: str = "llm-gateway-evaluation",
    *,
    artifacts: Mapping[str, bytes] | None = None,
    token: str | None = None,
    timeout: float = 30.0,
) -> str:
    """Copy one run from our store to an MLflow run and return the MLflow run id.

    Args:
        store_run: `Store.get_run(run_id)`: id, name, status, start/end time, params, metrics, tables.
        experiment: the MLflow experiment name (created when missing).
        artifacts: file name -> bytes to upload as well (e.g. `{"report.json": store.get_artifact(...)}`).

    Each table `T` becomes the artifact `T.json` in MLflow's table format and is listed in the
    `mlflow.loggedArtifacts` tag, so `eval_results_table` shows in the MLflow UI's evaluation view.
    Exporting the same store run again returns the MLflow run it already went to.
    """
    with MlflowClient(tracking_uri, token=token, timeout=timeout) as client:
        experiment_id = client.experiment_id(experiment)
        our_id = str(store_run["id"])
        found = client.call(
            "POST",
            "/api/2.0/mlflow/runs/search",
            json={
                "experiment_ids": [experiment_id],
                "filter": f"tags.`{RUN_ID_TAG}` = '{our_id}'",
                "max_results": 1,
            },
        )
        existing = [r for r in found.get("runs", []) if r["info"].get("status") != "RUNNING"]
        if existing:
            return str(existing[0]["info"]["run_id"])

        start_ms = int(float(store_run.get("start_time") or time.time()) * 1000)
        name = store_run.get("name") or f"llm-gateway run {our_id}"
        created = client.call(
            "POST",
            "/api/2.0/mlflow/runs/create",
            json={
                "experiment_id": experiment_id,
                "run_name": name,
                "start_time": start_ms,
                "tags": [
                    {"key": RUN_ID_TAG, "value": our_id},
                    {"key": "mlflow.source.name", "value": "llm-gateway"},
                    {"key": "mlflow.source.type", "value": "LOCAL"},
                ],
            },
        )
        info = created["run"]["info"]
        run_id = str(info["run_id"])
        try:
            _log_run_data(client, run_id, info["artifact_uri"], store_run, artifacts or {}, start_ms)
        except BaseException:
            client.call("POST", "/api/2.0/mlflow/runs/update", json={"run_id": run_id, "status": "FAILED"})
            raise
        status = store_run.get("status") or "FINISHED"
        end = store_run.get("end_time")
        update: dict[str, Any] = {"run_id": run_id, "status": status if status != "RUNNING" else "FINISHED"}
        update["end_time"] = int(float(end) * 1000) if end else int(time.time() * 1000)
        client.call("POST", "/api/2.0/mlflow/runs/update", json=update)
        return run_id


def _log_run_data(
    client: MlflowClient,
    run_id: str,
    artifact_uri: str,
    store_run: Mapping[str, Any],
    artifacts: Mapping[str, bytes],
    timestamp_ms: int,
) -> None:
    params = [{"key": str(k), "value": _param_value(v)} for k, v in (store_run.get("params") or {}).items()]
    metrics = [
        {"key": str(k), "value": float(v), "timestamp": timestamp_ms, "step": 0}
        for k, v in (store_run.get("metrics") or {}).items()
        if v is not None
    ]
    for chunk in _batches(params, _MAX_PARAMS):
        client.call("POST", "/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "params": chunk})
    for chunk in _batches(metrics, _MAX_METRICS):
        client.call("POST", "/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "metrics": chunk})

    logged: list[dict[str, str]] = []
    for table, rows in (store_run.get("tables") or {}).items():
        file_name = table if table.endswith(".json") else f"{table}.json"
        client.call("PUT", _artifact_path(artifact_uri, file_name), content=table_json(rows))
        logged.append({"path": file_name, "type": "table"})
    for file_name, data in artifacts.items():
        client.call("PUT", _artifact_path(artifact_uri, file_name), content=bytes(data))
    if logged:
        tag = {"key": LOGGED_ARTIFACTS_TAG, "value": orjson.dumps(logged).decode()}
        client.call("POST", "/api/2.0/mlflow/runs/set-tag", json={"run_id": run_id, **tag})
