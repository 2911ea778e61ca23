"""Replay datasets through the gateway and compute mlflow.evaluate-compatible metrics, offline.

from evaluation import evaluate, make_metric, MetricValue
result = evaluate(rows, model="endpoints:/chat", targets="answer", model_type="question-answering")
result.metrics["exact_match/v1"], result.table[0]["outputs"]
"""

from __future__ import annotations

from evaluation.metrics.base import EvaluationMetric, MetricValue, make_metric, standard_aggregations
from evaluation.metrics.genai import EvaluationExample, make_genai_metric
from evaluation.results import EvaluationResult
from evaluation.runner import evaluate, evaluate_async

__all__ = [
    "EvaluationExample",
    "EvaluationMetric",
    "EvaluationResult",
    "MetricValue",
    "evaluate",
    "evaluate_async",
    "make_genai_metric",
    "make_metric",
    "standard_aggregations",
]
