"""Built-in metrics by model type; each metric lives in one module and registers by name."""

from __future__ import annotations

from evaluation.metrics.base import (
    EvaluationMetric,
    MetricSkipped,
    MetricValue,
    get_metric,
    make_metric,
    metric_names,
    register_metric,
    standard_aggregations,
)

_TEXT = ("token_count", "toxicity", "flesch_kincaid_grade_level", "ari_grade_level")
MODEL_TYPE_METRICS: dict[str, tuple[str, ...]] = {
    "question-answering": (*_TEXT, "exact_match"),
    "text-summarization": (*_TEXT, "rouge1", "rouge2", "rougeL", "rougeLsum"),
    "text": _TEXT,
}


def builtin_metrics(model_type: str | None) -> list[EvaluationMetric]:
    """The metrics MLflow computes by default for `model_type` (none when it is None)."""
    if model_type is None:
        return []
    try:
        names = MODEL_TYPE_METRICS[model_type]
    except KeyError:
        known = ", ".join(MODEL_TYPE_METRICS)
        raise ValueError(f"unknown model_type {model_type!r} (known: {known})") from None
    return [get_metric(name) for name in names]


__all__ = [
    "MODEL_TYPE_METRICS",
    "EvaluationMetric",
    "MetricSkipped",
    "MetricValue",
    "builtin_metrics",
    "get_metric",
    "make_metric",
    "metric_names",
    "register_metric",
    "standard_aggregations",
]
