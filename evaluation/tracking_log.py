"""Store an evaluation run through `tracking`: params, aggregate metrics, the table, the report."""

from __future__ import annotations

import logging

from evaluation.results import EVAL_RESULTS_TABLE, EvaluationResult

logger = logging.getLogger(__name__)


def log_evaluation(result: EvaluationResult, *, tracking_uri: str | None = None, run_name: str | None = None) -> None:
    """Create a run for `result` and set `result.run_id`; a tracking failure never loses the result."""
    try:
        from tracking.store import open_store
    except ImportError as exc:  # pragma: no cover - tracking ships in the same distribution
        result.tracking_error = f"tracking is unavailable: {exc}"
        return
    try:
        with open_store(tracking_uri) as store:
            name = run_name or f"eval {result.params.get('model')} on {result.params.get('dataset')}"
            run_id = store.create_run(name, {**result.params, "kind": "evaluation"})
            try:
                store.log_metrics(run_id, result.metrics)
                store.log_table(run_id, EVAL_RESULTS_TABLE, result.table)
                extras = {"skipped_metrics": result.skipped_metrics, "metric_errors": result.metric_errors}
                store.log_params(run_id, {**extras, "row_errors": result.row_errors})
                store.log_artifact(run_id, "report.json", result.to_json().encode())
            except Exception:
                store.finish_run(run_id, "FAILED")
                raise
            store.finish_run(run_id, "FINISHED")
            result.run_id = run_id
    except Exception as exc:
        logger.warning("could not store the evaluation run: %s", exc)
        result.tracking_error = f"{type(exc).__name__}: {exc}"
