"""Bind an eval_fn's parameters by name, the way `mlflow.evaluate` does.

Each parameter name, after `col_mapping`, is looked up in order: `predictions`, `targets`,
`metrics` (all results so far), a literal from col_mapping, `inputs`, a dataset column, an
`evaluator_config` key, another metric's result (by name, with or without version), and finally
the parameter's own default. Metrics are ordered so that one that needs another runs after it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evaluation.metrics.base import EvaluationMetric, MetricValue

_SKIP_KINDS = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


@dataclass(frozen=True)
class Columns:
    """What metrics can ask for, restricted to the rows the model answered."""

    predictions: list[Any]
    targets: list[Any] | None
    inputs: list[str]
    dataset: Mapping[str, list[Any]]
    predictions_name: str | None = None  # the dataset column that held static predictions
    targets_name: str | None = None


class MissingArguments(ValueError):
    """No metric order can satisfy these parameters."""


def _as_series(values: Any, name: str) -> Any:
    # MLflow hands eval_fn pandas Series; we do too when pandas is installed, so ported code runs.
    if not isinstance(values, list):
        return values
    try:
        import pandas as pd
    except ImportError:
        return values
    return pd.Series(values, name=name, dtype=object if any(v is None for v in values) else None)


class Binder:
    def __init__(self, columns: Columns, evaluator_config: Mapping[str, Any]) -> None:
        self.columns = columns
        self.config = evaluator_config
        self.col_mapping: Mapping[str, Any] = evaluator_config.get("col_mapping") or {}

    def _metric_value(self, name: str, results: Mapping[str, MetricValue]) -> MetricValue | None:
        for key, value in results.items():
            if key == name or key.split("/")[0] == name:
                return value
        return None

    def _lookup(
        self,
        param: inspect.Parameter,
        metric: EvaluationMetric,
        results: Mapping[str, MetricValue],
        pending: Sequence[str],
    ) -> tuple[str, Any]:
        """("value", v), ("default", None), ("wait", None) or ("missing", None) for one parameter."""
        cols = self.columns
        source = self.col_mapping.get(param.name, param.name)
        if not isinstance(source, str):
            return "value", source  # a literal value given in col_mapping
        if source in ("predictions", cols.predictions_name):
            return "value", _as_series(cols.predictions, "predictions")
        if source in ("targets", cols.targets_name) and cols.targets is not None:
            return "value", _as_series(cols.targets, "targets")
        if source == "metrics":
            return "value", dict(results)
        if source in cols.dataset:
            return "value", _as_series(cols.dataset[source], source)
        if source == "inputs":
            return "value", _as_series(cols.inputs, "inputs")
        if source in self.config:
            return "value", self.config[source]
        if (value := self._metric_value(source, results)) is not None:
            return "value", value
        if any(source == p or source == p.split("/")[0] for p in pending if p != metric.key):
            return "wait", None  # computed later in this run: bind once it is
        return ("missing" if param.default is inspect.Parameter.empty else "default"), None

    def bind(
        self, metric: EvaluationMetric, results: Mapping[str, MetricValue], pending: Sequence[str]
    ) -> tuple[dict[str, Any] | None, list[str]]:
        """(kwargs, []) when every parameter is found; (None, missing names) otherwise."""
        kwargs: dict[str, Any] = {}
        missing: list[str] = []
        waiting = False
        for name, param in inspect.signature(metric.eval_fn).parameters.items():
            if param.kind in _SKIP_KINDS:
                continue
            kind, value = self._lookup(param, metric, results, pending)
            if kind == "value":
                kwargs[name] = value
            elif kind == "missing":
                missing.append(name)
            waiting = waiting or kind == "wait"
        if missing or waiting:
            return None, missing
        return kwargs, []


def order_metrics(metrics: Sequence[EvaluationMetric], binder: Binder) -> list[EvaluationMetric]:
    """Metrics in an order where each one's metric arguments come first; raises MissingArguments."""
    ordered: list[EvaluationMetric] = []
    placeholder: dict[str, MetricValue] = {}
    remaining = list(metrics)
    while remaining:
        pending = [m.key for m in remaining]
        progressed = []
        failures: list[str] = []
        for metric in remaining:
            kwargs, missing = binder.bind(metric, placeholder, pending)
            if kwargs is not None:
                progressed.append(metric)
            elif missing:
                failures.append(f"metric {metric.key!r} needs {', '.join(repr(m) for m in missing)}")
        if not progressed:
            detail = "; ".join(failures) or "metrics depend on each other in a cycle"
            raise MissingArguments(
                f"{detail}: map them with evaluator_config={{'col_mapping': {{PARAM: COLUMN}}}} "
                f"(columns: {', '.join(binder.columns.dataset)})"
            )
        for metric in progressed:
            ordered.append(metric)
            placeholder[metric.key] = MetricValue()
            remaining.remove(metric)
    return ordered
