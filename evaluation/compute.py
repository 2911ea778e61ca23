"""Run each metric once over the answered rows and turn the results into MLflow's keys."""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evaluation.binding import Binder, order_metrics
from evaluation.metrics.base import EvaluationMetric, MetricSkipped, MetricValue, _is_number, aggregate

logger = logging.getLogger(__name__)


@dataclass
class Computed:
    values: dict[str, MetricValue] = field(default_factory=dict)  # metric key -> value
    skipped: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _normalise(metric: EvaluationMetric, result: Any, n_rows: int) -> MetricValue | None:
    if result is None:
        return None
    if _is_number(result):
        # A bare number is the metric's single aggregate, keyed `name/version` as in MLflow.
        return MetricValue(aggregate_results={metric.name: float(result)})
    if not isinstance(result, MetricValue):
        raise TypeError(f"eval_fn returned {type(result).__name__}; expected a number, a MetricValue or None")
    for label, column in (("scores", result.scores), ("justifications", result.justifications)):
        if column is not None and len(column) != n_rows:
            raise ValueError(f"eval_fn returned {len(column)} {label} for {n_rows} rows")
    if metric.aggregations:
        result.aggregate_results = {**(result.aggregate_results or {}), **aggregate(result.scores, metric.aggregations)}
    return result


async def compute_metrics(
    metrics: Sequence[EvaluationMetric],
    binder: Binder,
    n_rows: int,
    *,
    initial: Mapping[str, MetricValue] | None = None,
) -> Computed:
    """Each metric's eval_fn is called exactly once, with every argument bound by name."""
    computed = Computed(values=dict(initial or {}))
    ordered = order_metrics(metrics, binder)
    pending = [m.key for m in ordered]
    for metric in ordered:
        pending.remove(metric.key)
        if n_rows == 0:
            computed.skipped[metric.key] = "no row has an output to score"
            continue
        kwargs, _ = binder.bind(metric, computed.values, pending)
        try:
            result = metric.eval_fn(**(kwargs or {}))
            if inspect.isawaitable(result):
                result = await result
            value = _normalise(metric, result, n_rows)
        except MetricSkipped as exc:
            computed.skipped[metric.key] = str(exc)
            continue
        except Exception as exc:
            logger.warning("metric %s failed: %r", metric.key, exc)
            computed.errors[metric.key] = f"{type(exc).__name__}: {exc}"
            continue
        if value is None:
            computed.skipped[metric.key] = "not applicable to this data (eval_fn returned None)"
        else:
            computed.values[metric.key] = value
    return computed


def aggregate_keys(values: Mapping[str, MetricValue]) -> dict[str, float]:
    """`{key}/{agg}`, or just `{key}` when the aggregate is named after the metric (exact_match/v1)."""
    out: dict[str, float] = {}
    for key, value in values.items():
        for agg_name, agg_value in (value.aggregate_results or {}).items():
            if agg_value is None or not _is_number(agg_value) or math.isnan(float(agg_value)):
                continue  # no NaN in results: an aggregate that can't be computed is left out
            out[key if agg_name == key.split("/")[0] else f"{key}/{agg_name}"] = float(agg_value)
    return out
