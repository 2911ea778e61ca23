"""evaluate(): replay a dataset through a model, score the outputs, and record the run.

`evaluate_async` does the work; `evaluate` is its synchronous wrapper (usable inside a running
event loop too, e.g. a notebook, by running in a worker thread).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from evaluation.binding import Binder, Columns
from evaluation.cache import ResponseCache
from evaluation.client import CURRENT_CLIENT, ENDPOINT_PREFIX, GatewayClient, parse_endpoint_uri, resolve_gateway_url
from evaluation.compute import aggregate_keys, compute_metrics
from evaluation.datasets import Dataset, load_dataset
from evaluation.metrics import builtin_metrics
from evaluation.metrics.base import EvaluationMetric, MetricValue
from evaluation.metrics.builtin import LATENCY, TOKEN_COUNT
from evaluation.metrics.offline import cache_dir
from evaluation.predict import RowOutcome, predict_callable, predict_dataframe, predict_endpoint
from evaluation.prompts import Template, build_inputs, from_value, input_column, render
from evaluation.results import EvaluationResult

OUTPUTS = "outputs"
_UNSCORED_COLUMNS = (TOKEN_COUNT, LATENCY)  # MLflow names these table columns without "/score"


def evaluate(data: Any, **kwargs: Any) -> EvaluationResult:
    """Synchronous `evaluate_async`; see there for the arguments."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(evaluate_async(data, **kwargs))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, evaluate_async(data, **kwargs)).result()


def _open_cache(cache: str | Path | bool | ResponseCache | None) -> ResponseCache | None:
    if cache is None or cache is False:
        return None
    if isinstance(cache, ResponseCache):
        return cache
    return ResponseCache(cache_dir() / "responses.sqlite" if cache is True else cache)


@contextlib.contextmanager
def _progress(total: int, enabled: bool | None, label: str) -> Iterator[Callable[[], None]]:
    """A rich progress bar on a terminal; a no-op otherwise."""
    if enabled is False or (enabled is None and not sys.stderr.isatty()) or total == 0:
        yield lambda: None
        return
    from rich.progress import Progress

    with Progress(transient=False) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


async def evaluate_async(
    data: Any,
    *,
    model: str | Callable[[Any], Any] | None = None,
    predictions: str | None = None,
    targets: str | None = None,
    model_type: str | None = None,
    extra_metrics: Sequence[EvaluationMetric] = (),
    evaluator_config: Mapping[str, Any] | None = None,
    gateway_url: str | None = None,
    prompt_template: Template | None = None,
    inference_params: Mapping[str, Any] | None = None,
    concurrency: int = 8,
    retries: int = 2,
    row_timeout: float | None = 120.0,
    request_timeout: float = 60.0,
    cache: str | Path | bool | ResponseCache | None = None,
    progress: bool | None = None,
    log_to_tracking: bool = True,
    tracking_uri: str | None = None,
    run_name: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> EvaluationResult:
    """Evaluate `model` on `data`, as `mlflow.evaluate` does for LLMs.

    Args:
        model: `"endpoints:/NAME"` (a gateway endpoint), a callable called once per row with that
            row's input (or once with a DataFrame when `evaluator_config["model_input"] == "dataframe"`,
            MLflow's function-model contract), or None with `predictions=` naming a column.
        prompt_template: a string or chat template with `{column}` placeholders, sent instead of a column.
        cache: a path, True for the default cache file, or None: answers kept so a rerun resumes.
        log_to_tracking: store the run through `tracking` (at `tracking_uri`, else its default database).
    """
    config = dict(evaluator_config or {})
    col_mapping: dict[str, Any] = dict(config.get("col_mapping") or {})
    dataset = load_dataset(data)
    _check_columns(dataset, model, predictions, targets)
    metrics = [*builtin_metrics(model_type), *extra_metrics]
    wants_latency = any(m.name == LATENCY for m in metrics)
    metrics = [m for m in metrics if m.name != LATENCY]  # measured while predicting, not computed after

    url = _optional_url(gateway_url, needed=isinstance(model, str))
    response_cache = _open_cache(cache)
    client = (
        GatewayClient(
            url,
            retries=retries,
            request_timeout=request_timeout,
            cache=response_cache,
            concurrency=concurrency,
            transport=transport,
        )
        if url
        else None
    )
    token = CURRENT_CLIENT.set(client)
    try:
        exclude = [c for c in (targets, predictions) if c]
        inputs = _judge_inputs(dataset, exclude, col_mapping, prompt_template, model, predictions)
        outcomes = await _predict(
            dataset, model, predictions, client, exclude, col_mapping, prompt_template, inference_params, config,
            concurrency=concurrency, row_timeout=row_timeout, progress=progress,
        )  # fmt: skip
        ok = [i for i, o in enumerate(outcomes) if o.ok]
        columns = Columns(
            predictions=[outcomes[i].output for i in ok],
            targets=[dataset.rows[i].get(targets) for i in ok] if targets else None,
            inputs=[inputs[i] for i in ok],
            dataset={c: [dataset.rows[i].get(c) for i in ok] for c in dataset.columns},
            predictions_name=predictions,
            targets_name=targets,
        )
        initial: dict[str, MetricValue] = {}
        called_model = model is not None
        if called_model:
            initial[LATENCY] = MetricValue(scores=[outcomes[i].latency for i in ok])
        computed = await compute_metrics(metrics, Binder(columns, config), len(ok), initial=initial)
    finally:
        CURRENT_CLIENT.reset(token)
        if client is not None:
            await client.aclose()
        if response_cache is not None and not isinstance(cache, ResponseCache):
            response_cache.close()

    if wants_latency and not called_model:
        computed.skipped[LATENCY] = "no model was called (static predictions)"
    output_column = predictions if model is None else (predictions or OUTPUTS)
    table = _table(dataset, outcomes, ok, computed.values, output_column, static=model is None)
    result = EvaluationResult(
        metrics=aggregate_keys(computed.values),
        table=table,
        skipped_metrics=computed.skipped,
        metric_errors=computed.errors,
        params=_params(model, predictions, targets, model_type, dataset, metrics, config, prompt_template),
    )
    if log_to_tracking:
        from evaluation.tracking_log import log_evaluation

        log_evaluation(result, tracking_uri=tracking_uri, run_name=run_name)
    return result


def _check_columns(dataset: Dataset, model: Any, predictions: str | None, targets: str | None) -> None:
    if model is None and predictions is None:
        raise ValueError("pass model= (an 'endpoints:/NAME' URI or a callable) or predictions= (a column name)")
    if isinstance(model, str) and not model.startswith(ENDPOINT_PREFIX):
        raise ValueError(f"model {model!r}: use 'endpoints:/NAME' for a gateway endpoint, or pass a callable")
    columns = dataset.columns
    for label, name in (("targets", targets), ("predictions", predictions if model is None else None)):
        if name is not None and name not in columns:
            raise ValueError(f"{label}={name!r} is not a column of the dataset (columns: {', '.join(columns)})")


def _optional_url(explicit: str | None, *, needed: bool) -> str | None:
    try:
        return resolve_gateway_url(explicit)
    except ValueError:
        if needed:
            raise
        return None  # judges and endpoint scorers will say so per metric


def _judge_inputs(
    dataset: Dataset,
    exclude: list[str],
    col_mapping: Mapping[str, Any],
    template: Template | None,
    model: Any,
    predictions: str | None,
) -> list[str]:
    """The text judges see as each row's input (what was, or would have been, sent to the model)."""
    if template is not None:
        return [render(template, row).text for row in dataset.rows]
    try:
        column = input_column(dataset, exclude=exclude, col_mapping=col_mapping)
    except ValueError:
        if model is not None:
            raise
        return ["" for _ in dataset.rows]  # static predictions with several columns: map `inputs` if a judge needs it
    return [from_value(row.get(column)).text for row in dataset.rows]


async def _predict(
    dataset: Dataset,
    model: Any,
    predictions: str | None,
    client: GatewayClient | None,
    exclude: list[str],
    col_mapping: Mapping[str, Any],
    template: Template | None,
    inference_params: Mapping[str, Any] | None,
    config: Mapping[str, Any],
    *,
    concurrency: int,
    row_timeout: float | None,
    progress: bool | None,
) -> list[RowOutcome]:
    if model is None:
        return [RowOutcome(row.get(predictions)) for row in dataset.rows]
    if isinstance(model, str):
        assert client is not None
        inputs = build_inputs(dataset, exclude=exclude, col_mapping=col_mapping, prompt_template=template)
        with _progress(len(inputs), progress, f"evaluating {model}") as advance:
            return await predict_endpoint(
                client, parse_endpoint_uri(model), inputs, params=dict(inference_params or {}),
                concurrency=concurrency, row_timeout=row_timeout, advance=advance,
            )  # fmt: skip
    features = [c for c in dataset.columns if c not in exclude]
    if config.get("model_input") == "dataframe":
        return predict_dataframe(model, [{c: r.get(c) for c in features} for r in dataset.rows], features)
    if template is not None:
        rendered = [render(template, row) for row in dataset.rows]
        values: list[Any] = [r.text if isinstance(template, str) else r.messages for r in rendered]
    else:
        column = input_column(dataset, exclude=exclude, col_mapping=col_mapping)
        values = [row.get(column) for row in dataset.rows]
    name = getattr(model, "__name__", "model")
    with _progress(len(values), progress, f"evaluating {name}") as advance:
        return await predict_callable(model, values, concurrency=concurrency, row_timeout=row_timeout, advance=advance)


def _scatter(values: Sequence[Any] | None, ok: list[int], n: int) -> list[Any] | None:
    if values is None:
        return None
    full: list[Any] = [None] * n
    for index, value in zip(ok, values, strict=True):
        full[index] = value
    return full


def _table(
    dataset: Dataset,
    outcomes: list[RowOutcome],
    ok: list[int],
    values: Mapping[str, MetricValue],
    output_column: str | None,
    *,
    static: bool,
) -> list[dict[str, Any]]:
    n = len(dataset)
    rows = [dict(row) for row in dataset.rows]
    if not static and output_column:
        for row, outcome in zip(rows, outcomes, strict=True):
            row[output_column] = outcome.output
    columns: dict[str, list[Any] | None] = {}
    for key, value in values.items():
        if value.scores is not None:
            columns[key if key in _UNSCORED_COLUMNS else f"{key}/score"] = _scatter(value.scores, ok, n)
        if value.justifications is not None:
            columns[f"{key}/justification"] = _scatter(value.justifications, ok, n)
        if value.errors is not None:
            columns[f"{key}/error"] = _scatter(value.errors, ok, n)
    for name, column in columns.items():
        assert column is not None
        for row, cell in zip(rows, column, strict=True):
            row[name] = cell
    for row, outcome in zip(rows, outcomes, strict=True):
        row["status"] = "ok" if outcome.ok else "error"
        row["error"] = outcome.error
        if not static:
            row["cached"] = outcome.cached
    return rows


def _params(
    model: Any,
    predictions: str | None,
    targets: str | None,
    model_type: str | None,
    dataset: Dataset,
    metrics: Sequence[EvaluationMetric],
    config: Mapping[str, Any],
    template: Template | None,
) -> dict[str, Any]:
    model_name = model if isinstance(model, str) or model is None else getattr(model, "__name__", repr(model))
    return {
        "model": model_name,
        "predictions": predictions,
        "targets": targets,
        "model_type": model_type,
        "dataset": dataset.source,
        "dataset_digest": dataset.digest,
        "dataset_rows": len(dataset),
        "prompt_template": template,
        "metrics": {m.key: {"greater_is_better": m.greater_is_better, **(m.genai_metric_args or {})} for m in metrics},
        "evaluator_config": {k: v for k, v in config.items() if k != "toxicity_scorer"},
    }


# `evaluate` takes exactly evaluate_async's arguments; show them to help() and IDEs.
evaluate.__signature__ = inspect.signature(evaluate_async)  # type: ignore[attr-defined]
