"""exact_match, token_count and latency, defined as MLflow defines them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evaluation.metrics.base import EvaluationMetric, MetricValue, make_metric, register_metric
from evaluation.metrics.offline import get_encoding

LATENCY = "latency"
TOKEN_COUNT = "token_count"


def _exact_match_eval_fn(
    predictions: Sequence[Any], targets: Sequence[Any] | None = None, metrics: Any = None
) -> MetricValue | None:
    # sklearn's accuracy_score in MLflow: the share of rows whose prediction equals the target.
    if targets is None or len(targets) == 0:
        return None
    matches = sum(1 for p, t in zip(predictions, targets, strict=True) if p == t)
    return MetricValue(aggregate_results={"exact_match": matches / len(targets)})


@register_metric("exact_match")
def exact_match() -> EvaluationMetric:
    return make_metric(eval_fn=_exact_match_eval_fn, greater_is_better=True, name="exact_match", version="v1")


def _token_count_eval_fn(predictions: Sequence[Any], targets: Any = None, metrics: Any = None) -> MetricValue:
    encoding = get_encoding("cl100k_base")
    # encode_ordinary: text that happens to contain "<|endoftext|>" is counted, not rejected.
    counts = [len(encoding.encode_ordinary(p)) if isinstance(p, str) else None for p in predictions]
    return MetricValue(scores=counts, aggregate_results={})  # MLflow reports no aggregate for it


@register_metric(TOKEN_COUNT)
def token_count() -> EvaluationMetric:
    return make_metric(eval_fn=_token_count_eval_fn, greater_is_better=True, name=TOKEN_COUNT)


@register_metric(LATENCY)
def latency() -> EvaluationMetric:
    """Seconds per model call; the runner measures it, so eval_fn has nothing left to do."""
    return make_metric(eval_fn=lambda predictions: MetricValue(), greater_is_better=False, name=LATENCY)
