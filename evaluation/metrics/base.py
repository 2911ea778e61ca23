"""Metric values, the metric object, aggregations, and the registry of built-in metrics.

Mirrors `mlflow.metrics.base` / `mlflow.models.make_metric` so ported code keeps working:
a metric is an `eval_fn` over whole columns, returning per-row `scores` and `aggregate_results`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_AGGREGATIONS: tuple[str, ...] = ("mean", "variance", "p90")


def _p90(values: list[float]) -> float:
    # numpy's default (linear interpolation) is what MLflow reports.
    return float(np.percentile(values, 90))


def _ratio(values: list[float]) -> float:
    # The toxicity measurement's "ratio": share of texts at or above the 0.5 threshold.
    return sum(1 for v in values if v >= 0.5) / len(values)


AGGREGATIONS: dict[str, Callable[[list[float]], float]] = {
    "mean": lambda v: float(np.mean(v)),
    "variance": lambda v: float(np.var(v)),  # population variance, as np.var and MLflow
    "p90": _p90,
    "min": lambda v: float(np.min(v)),
    "max": lambda v: float(np.max(v)),
    "median": lambda v: float(np.median(v)),
    "ratio": _ratio,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def valid_scores(scores: Iterable[Any] | None) -> list[float]:
    """The numeric, non-NaN scores: None marks a row the metric did not apply to or failed on."""
    if scores is None:
        return []
    return [float(s) for s in scores if _is_number(s) and not math.isnan(float(s))]


def aggregate(scores: Iterable[Any] | None, aggregations: Sequence[str] = DEFAULT_AGGREGATIONS) -> dict[str, float]:
    """Aggregate the valid scores; with none valid there is nothing to report (never NaN)."""
    unknown = [a for a in aggregations if a not in AGGREGATIONS]
    if unknown:
        raise ValueError(f"unknown aggregation {unknown[0]!r} (known: {', '.join(sorted(AGGREGATIONS))})")
    values = valid_scores(scores)
    if not values:
        return {}
    return {name: AGGREGATIONS[name](values) for name in aggregations}


def standard_aggregations(scores: Iterable[Any]) -> dict[str, float]:
    """mean, population variance and p90 of the scores, as `mlflow.metrics.base.standard_aggregations`."""
    return aggregate(scores, DEFAULT_AGGREGATIONS)


@dataclass
class MetricValue:
    """A metric's result: per-row scores and justifications, and named aggregates.

    When `aggregate_results` is not given and every score is a number, the standard aggregations
    are filled in, as MLflow does. `errors` (ours) holds a per-row error message where a row failed.
    """

    scores: list[Any] | None = None
    justifications: list[str | None] | None = None
    aggregate_results: dict[str, float] | None = None
    errors: list[str | None] | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if self.scores is not None and not isinstance(self.scores, list):
            self.scores = list(self.scores)
        if self.aggregate_results is None and self.scores is not None and all(_is_number(s) for s in self.scores):
            self.aggregate_results = standard_aggregations(self.scores)


@dataclass(frozen=True)
class EvaluationMetric:
    """A named metric: `eval_fn`'s parameters are bound by name when the runner calls it."""

    name: str
    eval_fn: Callable[..., Any]
    greater_is_better: bool
    version: str | None = None
    long_name: str | None = None
    metric_details: str | None = None
    metric_metadata: dict[str, Any] | None = None
    genai_metric_args: dict[str, Any] | None = None
    aggregations: tuple[str, ...] | None = None  # None: whatever eval_fn reports

    @property
    def key(self) -> str:
        """The prefix of every key this metric produces: `name/version`, or `name` without a version."""
        return f"{self.name}/{self.version}" if self.version else self.name

    def arg_names(self) -> tuple[str, ...]:
        return tuple(inspect.signature(self.eval_fn).parameters)

    def __call__(self, **kwargs: Any) -> Any:
        """Call eval_fn directly with keyword columns, as MLflow's metric objects allow."""
        result = self.eval_fn(**kwargs)
        if inspect.isawaitable(result):
            import asyncio

            return asyncio.run(_await(result))
        return result

    def __str__(self) -> str:
        return f"EvaluationMetric(name={self.name}, greater_is_better={self.greater_is_better})"


async def _await(awaitable: Any) -> Any:
    return await awaitable


def make_metric(
    *,
    eval_fn: Callable[..., Any],
    greater_is_better: bool,
    name: str | None = None,
    long_name: str | None = None,
    version: str | None = None,
    metric_details: str | None = None,
    metric_metadata: dict[str, Any] | None = None,
    genai_metric_args: dict[str, Any] | None = None,
    aggregations: Sequence[str] | None = None,
) -> EvaluationMetric:
    """Build a metric from `eval_fn`, as `mlflow.models.make_metric`.

    `eval_fn` may return a number (an aggregate named after the metric), a `MetricValue`, or None
    (not applicable). `aggregations` (ours) asks for extra aggregates of the per-row scores,
    e.g. `("mean", "min", "max", "median")`.
    """
    if name is None:
        name = getattr(eval_fn, "__name__", None)
        if not name or name == "<lambda>":
            raise ValueError("make_metric: `name` is required when eval_fn is a lambda or has no __name__")
    if aggregations is not None:
        aggregate([], aggregations)  # validates the names now, not mid-run
    return EvaluationMetric(
        name=name,
        eval_fn=eval_fn,
        greater_is_better=greater_is_better,
        version=version,
        long_name=long_name,
        metric_details=metric_details,
        metric_metadata=metric_metadata,
        genai_metric_args=genai_metric_args,
        aggregations=tuple(aggregations) if aggregations is not None else None,
    )


class MetricSkipped(Exception):
    """Raised by an eval_fn that cannot run here (say, no toxicity model); the reason is reported."""


_REGISTRY: dict[str, Callable[[], EvaluationMetric]] = {}


def register_metric(name: str) -> Callable[[Callable[[], EvaluationMetric]], Callable[[], EvaluationMetric]]:
    """Register a metric factory under `name` (what `--metric NAME` and model_type defaults look up)."""

    def decorator(factory: Callable[[], EvaluationMetric]) -> Callable[[], EvaluationMetric]:
        _REGISTRY[name] = factory
        return factory

    return decorator


def get_metric(name: str) -> EvaluationMetric:
    """A fresh instance of the registered metric `name`."""
    _load_builtins()
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise KeyError(f"unknown metric {name!r} (known: {', '.join(sorted(_REGISTRY))})") from None


def metric_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def _load_builtins() -> None:
    # Imported for their @register_metric side effect; late, so base.py stays import-light.
    from evaluation.metrics import builtin, text, toxicity  # noqa: F401
