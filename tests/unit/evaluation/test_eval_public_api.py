"""The names issue 5 promises are importable where it says, and `__all__` is sorted and complete."""

from __future__ import annotations

import inspect

import evaluation


def test_public_names() -> None:
    from evaluation import (  # noqa: F401
        EvaluationExample,
        MetricValue,
        evaluate,
        make_genai_metric,
        make_metric,
        standard_aggregations,
    )
    from evaluation.metrics.genai import (  # noqa: F401
        answer_correctness,
        answer_relevance,
        answer_similarity,
        faithfulness,
        relevance,
    )

    assert evaluation.__all__ == sorted(evaluation.__all__)
    assert all(hasattr(evaluation, name) for name in evaluation.__all__)


def test_evaluate_signature_is_mlflow_shaped() -> None:
    params = inspect.signature(evaluation.evaluate).parameters
    for name in ("model", "predictions", "targets", "model_type", "extra_metrics", "evaluator_config", "gateway_url"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
