"""The result of a run: MLflow-keyed aggregates, the per-row table, and what was skipped or failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EVAL_RESULTS_TABLE = "eval_results_table"


@dataclass
class EvaluationResult:
    """What `evaluate` returns.

    `metrics` uses MLflow's keys (`rouge1/v1/mean`, `exact_match/v1`, `latency/p90`). `table` has one
    dict per row: the dataset's columns, `outputs`, `token_count`, `latency`, `NAME/v1/score`,
    `NAME/v1/justification`, and ours: `status` ("ok" or "error") and `error`.
    """

    metrics: dict[str, float]
    table: list[dict[str, Any]]
    run_id: str | None = None
    skipped_metrics: dict[str, str] = field(default_factory=dict)  # metric key -> why it did not run
    metric_errors: dict[str, str] = field(default_factory=dict)  # metric key -> the exception it raised
    params: dict[str, Any] = field(default_factory=dict)
    tracking_error: str | None = None

    @property
    def tables(self) -> dict[str, list[dict[str, Any]]]:
        return {EVAL_RESULTS_TABLE: self.table}

    @property
    def row_errors(self) -> int:
        return sum(1 for row in self.table if row.get("status") == "error")

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "params": self.params,
            "metrics": self.metrics,
            "skipped_metrics": self.skipped_metrics,
            "metric_errors": self.metric_errors,
            "rows": len(self.table),
            "row_errors": self.row_errors,
            "table": self.table,
        }

    def to_json(self, *, indent: bool = True) -> str:
        from evaluation.report import to_json

        return to_json(self, indent=indent)

    def to_html(self) -> str:
        from evaluation.report import to_html

        return to_html(self)
