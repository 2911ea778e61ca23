"""MetricValue, aggregations, make_metric and by-name binding."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from evaluation import MetricValue, evaluate, make_metric, standard_aggregations
from evaluation.binding import MissingArguments
from evaluation.metrics.base import aggregate, get_metric, metric_names

ROWS = [
    {"question": "q1", "answer": "a", "pred": "a", "weight": 1.0},
    {"question": "q2", "answer": "b", "pred": "x", "weight": 2.0},
    {"question": "q3", "answer": "c", "pred": "c", "weight": 3.0},
]


def run(*metrics: Any, **kwargs: Any) -> Any:
    return evaluate(ROWS, predictions="pred", targets="answer", extra_metrics=list(metrics), **kwargs)


def test_standard_aggregations_match_numpy() -> None:
    scores = [0.1, 3.5, 2.0, 7.25, 4.0, 4.0, -1.0]
    got = standard_aggregations(scores)
    assert got == pytest.approx(
        {"mean": np.mean(scores), "variance": np.var(scores), "p90": np.percentile(scores, 90)}, abs=1e-12
    )
    extra = aggregate(scores, ["min", "max", "median", "ratio"])
    assert extra == pytest.approx({"min": -1.0, "max": 7.25, "median": 3.5, "ratio": 5 / 7})


def test_aggregations_skip_missing_scores_and_report_nothing_when_none_valid() -> None:
    assert standard_aggregations([1.0, None, 3.0, float("nan")]) == pytest.approx(
        {"mean": 2.0, "variance": 1.0, "p90": 2.8}
    )
    assert standard_aggregations([None, None]) == {}
    with pytest.raises(ValueError, match="unknown aggregation 'p99'"):
        aggregate([1.0], ["p99"])


def test_metric_value_fills_standard_aggregations_like_mlflow() -> None:
    assert MetricValue(scores=[1, 2, 3]).aggregate_results == pytest.approx(standard_aggregations([1, 2, 3]))
    assert MetricValue(scores=["a", "b"]).aggregate_results is None
    assert MetricValue(scores=[1], aggregate_results={}).aggregate_results == {}


def test_custom_metric_keys_per_row_scores_and_bare_number() -> None:
    def length(predictions: Any) -> MetricValue:
        return MetricValue(scores=[len(p) for p in predictions])

    def share(predictions: Any, targets: Any) -> float:
        return sum(p == t for p, t in zip(predictions, targets, strict=True)) / len(targets)

    result = run(
        make_metric(eval_fn=length, greater_is_better=True, name="my_metric", version="v1"),
        make_metric(eval_fn=share, greater_is_better=True, name="share"),
    )
    assert result.metrics["my_metric/v1/mean"] == 1.0
    assert result.metrics["my_metric/v1/p90"] == 1.0
    assert result.metrics["share"] == pytest.approx(2 / 3)  # no version: MLflow's key is the bare name
    assert [row["my_metric/v1/score"] for row in result.table] == [1, 1, 1]


def test_arguments_bound_by_name_to_columns_config_literals_and_other_metrics() -> None:
    seen: dict[str, Any] = {}

    def base(predictions: Any, targets: Any) -> MetricValue:
        return MetricValue(scores=[float(p == t) for p, t in zip(predictions, targets, strict=True)])

    def combined(predictions: Any, question: Any, w: Any, threshold: float, base: MetricValue, metrics: Any) -> float:
        seen.update(question=list(question), w=list(w), threshold=threshold, base=base.scores, keys=sorted(metrics))
        return sum(s * x for s, x in zip(base.scores, w, strict=True)) / threshold

    result = run(
        # Listed before the metric it needs: the runner orders them.
        make_metric(eval_fn=combined, greater_is_better=True, name="combined", version="v1"),
        make_metric(eval_fn=base, greater_is_better=True, name="base", version="v1"),
        evaluator_config={"col_mapping": {"w": "weight"}, "threshold": 2.0},
    )
    assert seen == {
        "question": ["q1", "q2", "q3"],
        "w": [1.0, 2.0, 3.0],
        "threshold": 2.0,
        "base": [1.0, 0.0, 1.0],
        "keys": ["base/v1"],
    }
    assert result.metrics["combined/v1"] == 2.0


def test_literal_in_col_mapping_and_default_values() -> None:
    def scaled(predictions: Any, factor: Any, offset: int = 10) -> float:
        return len(predictions) * factor + offset

    result = run(
        make_metric(eval_fn=scaled, greater_is_better=True, name="scaled"),
        evaluator_config={"col_mapping": {"factor": 5}},
    )
    assert result.metrics["scaled"] == 25.0


def test_columns_are_pandas_series_like_mlflow() -> None:
    pd = pytest.importorskip("pandas")
    types: list[type] = []

    def kinds(predictions: Any, targets: Any, question: Any) -> None:
        types.extend([type(predictions), type(targets), type(question)])

    run(make_metric(eval_fn=kinds, greater_is_better=True, name="kinds"))
    assert types == [pd.Series] * 3


def test_each_metric_runs_once_over_all_rows() -> None:
    calls: list[int] = []

    def counted(predictions: Any) -> MetricValue:
        calls.append(len(predictions))
        return MetricValue(scores=[1.0] * len(predictions))

    run(make_metric(eval_fn=counted, greater_is_better=True, name="counted"))
    assert calls == [3]  # MLflow calls it on the first row first; we don't


def test_missing_argument_is_an_error_naming_it() -> None:
    def needs(predictions: Any, nowhere: Any) -> float:
        return 1.0

    with pytest.raises(MissingArguments, match="'needs' needs 'nowhere'"):
        run(make_metric(eval_fn=needs, greater_is_better=True, name="needs"))


def test_failing_metric_is_reported_and_others_still_computed() -> None:
    def broken(predictions: Any) -> float:
        raise RuntimeError("boom")

    result = run(make_metric(eval_fn=broken, greater_is_better=True, name="broken"), model_type="question-answering")
    assert result.metric_errors == {"broken": "RuntimeError: boom"}
    assert result.metrics["exact_match/v1"] == pytest.approx(2 / 3)


def test_none_result_is_reported_as_not_applicable() -> None:
    result = run(make_metric(eval_fn=lambda predictions: None, greater_is_better=True, name="nothing"))
    assert "nothing" in result.skipped_metrics
    assert not [k for k in result.metrics if k.startswith("nothing")]


def test_requested_aggregations() -> None:
    metric = make_metric(
        eval_fn=lambda predictions: MetricValue(scores=[1.0, 2.0, 6.0]),
        greater_is_better=True,
        name="agg",
        version="v1",
        aggregations=["min", "max", "median"],
    )
    result = run(metric)
    assert {k: v for k, v in result.metrics.items() if k.startswith("agg/")} == {
        "agg/v1/mean": 3.0,
        "agg/v1/variance": pytest.approx(np.var([1, 2, 6])),
        "agg/v1/p90": pytest.approx(np.percentile([1, 2, 6], 90)),
        "agg/v1/min": 1.0,
        "agg/v1/max": 6.0,
        "agg/v1/median": 2.0,
    }


def test_make_metric_needs_a_name_for_lambdas() -> None:
    with pytest.raises(ValueError, match="name"):
        make_metric(eval_fn=lambda predictions: 1.0, greater_is_better=True)


def test_registry_lists_builtins() -> None:
    assert {"exact_match", "token_count", "toxicity", "rouge1", "rougeLsum", "latency"} <= set(metric_names())
    assert get_metric("rouge2").key == "rouge2/v1"
    with pytest.raises(KeyError, match="unknown metric 'nope'"):
        get_metric("nope")
