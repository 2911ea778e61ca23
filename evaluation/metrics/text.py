"""Readability (textstat) and ROUGE (rouge-score) metrics, defined as MLflow defines them.

flesch_kincaid_grade_level and ari_grade_level call textstat's `flesch_kincaid_grade` and
`automated_readability_index`; rouge1/2/L/Lsum are rouge-score F-measures without stemming, with
the target as reference (what the Hugging Face `rouge` metric that MLflow loads computes), via
the exact fast path in rouge.py.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from evaluation.metrics.base import EvaluationMetric, MetricValue, make_metric, register_metric
from evaluation.metrics.offline import ensure_cmudict
from evaluation.metrics.rouge import rouge_fmeasures


def _per_text(predictions: Sequence[Any], score: Callable[[str], float]) -> MetricValue | None:
    if predictions is None or len(predictions) == 0:
        return None
    scores = [score(p) if isinstance(p, str) else None for p in predictions]
    return MetricValue(scores=scores)


def _textstat() -> Any:
    ensure_cmudict()  # before textstat's first syllable count, which would otherwise download it
    import textstat

    return textstat


def _flesch_kincaid_eval_fn(predictions: Sequence[Any], targets: Any = None, metrics: Any = None) -> MetricValue | None:
    return _per_text(predictions, _textstat().flesch_kincaid_grade)


def _ari_eval_fn(predictions: Sequence[Any], targets: Any = None, metrics: Any = None) -> MetricValue | None:
    return _per_text(predictions, _textstat().automated_readability_index)


@register_metric("flesch_kincaid_grade_level")
def flesch_kincaid_grade_level() -> EvaluationMetric:
    return make_metric(
        eval_fn=_flesch_kincaid_eval_fn, greater_is_better=False, name="flesch_kincaid_grade_level", version="v1"
    )


@register_metric("ari_grade_level")
def ari_grade_level() -> EvaluationMetric:
    return make_metric(
        eval_fn=_ari_eval_fn,
        greater_is_better=False,
        name="ari_grade_level",
        long_name="automated_readability_index_grade_level",
        version="v1",
    )


# The four ROUGE metrics run one after another over the same rows: score each pair once.
_cached_fmeasures = functools.lru_cache(maxsize=16384)(rouge_fmeasures)


def _rouge_eval_fn(rouge_type: str) -> Callable[..., MetricValue | None]:
    def eval_fn(predictions: Sequence[Any], targets: Sequence[Any] | None = None, metrics: Any = None) -> Any:
        if predictions is None or targets is None or len(predictions) == 0 or len(targets) == 0:
            return None  # MLflow skips ROUGE without targets
        scores = [
            _cached_fmeasures(t, p)[rouge_type] if isinstance(p, str) and isinstance(t, str) else None
            for p, t in zip(predictions, targets, strict=True)
        ]
        return MetricValue(scores=scores)

    eval_fn.__name__ = f"_{rouge_type}_eval_fn"
    return eval_fn


def _rouge_metric(rouge_type: str) -> EvaluationMetric:
    return make_metric(eval_fn=_rouge_eval_fn(rouge_type), greater_is_better=True, name=rouge_type, version="v1")


@register_metric("rouge1")
def rouge1() -> EvaluationMetric:
    return _rouge_metric("rouge1")


@register_metric("rouge2")
def rouge2() -> EvaluationMetric:
    return _rouge_metric("rouge2")


@register_metric("rougeL")
def rougeL() -> EvaluationMetric:
    return _rouge_metric("rougeL")


@register_metric("rougeLsum")
def rougeLsum() -> EvaluationMetric:
    return _rouge_metric("rougeLsum")
