"""`llm-gateway eval ...` and `llm-gateway eval-compare RUN_A RUN_B`.

gateway/cli.py calls `register(subparsers)`; each leaf parser sets `func(args) -> int`. The
compare parser can also hang under tracking's `runs` command via `add_compare_parser`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_USAGE, EXIT_ROW_ERRORS = 0, 2, 3


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="replay a dataset through an endpoint and compute metrics",
        description="Replay a dataset through a gateway endpoint (or score a predictions column) and compute "
        "mlflow.evaluate-compatible metrics. The run is stored through tracking.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--endpoint", help="gateway endpoint to evaluate (the NAME in endpoints:/NAME)")
    source.add_argument("--predictions", metavar="COL", help="score this column instead of calling a model")
    parser.add_argument("--data", required=True, help="dataset: .csv, .jsonl, .json or .parquet")
    parser.add_argument("--targets", metavar="COL", help="column holding the expected answers")
    parser.add_argument("--model-type", choices=["question-answering", "text-summarization", "text"])
    parser.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="NAME",
        help="extra metric by name (built-ins, or a judge: answer_similarity, answer_correctness, faithfulness, "
        "answer_relevance, relevance); repeatable",
    )
    parser.add_argument("--judge", metavar="ENDPOINT", help="endpoint that grades the judge metrics")
    parser.add_argument("--gateway-url", help="default: $LLM_GATEWAY_URL or $MLFLOW_DEPLOYMENTS_TARGET")
    parser.add_argument("--input-column", metavar="COL", help="column sent to the model (col_mapping['inputs'])")
    parser.add_argument(
        "--prompt-template",
        metavar="TEXT|@FILE",
        help="prompt with {column} placeholders; @file.json holds a chat template (a list of messages)",
    )
    parser.add_argument("--col-map", action="append", default=[], metavar="PARAM=COL", help="map a metric parameter")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--retries", type=int, default=2)
    parser.add_argument("--row-timeout", type=float, default=120.0, help="seconds per row, retries included")
    parser.add_argument("--cache", metavar="PATH", help="response cache file (default: the user cache directory)")
    parser.add_argument("--no-cache", action="store_true", help="call the model for every row, keep nothing")
    parser.add_argument("--tracking-db", metavar="PATH", help="tracking store (default: tracking's default)")
    parser.add_argument("--no-tracking", action="store_true", help="do not store the run")
    parser.add_argument("--run-name")
    parser.add_argument("--report", metavar="FILE", help="write a report: .html for a page, anything else JSON")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON on stdout")
    parser.set_defaults(func=run_eval)

    compare = subparsers.add_parser("eval-compare", help="compare two evaluation runs' metrics")
    _compare_arguments(compare)


def add_compare_parser(runs_subparsers: Any) -> None:
    """`runs compare RUN_A RUN_B`, for tracking's `runs` command to include."""
    _compare_arguments(runs_subparsers.add_parser("compare", help="compare two evaluation runs' metrics"))


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    parser.add_argument("--tracking-db", metavar="PATH")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run_compare)


def _template(value: str | None) -> Any:
    if value is None or not value.startswith("@"):
        return value
    text = Path(value[1:]).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _metrics(names: list[str], judge: str | None) -> list[Any]:
    from evaluation.metrics.base import get_metric
    from evaluation.metrics.genai import JUDGE_FACTORIES

    model = f"endpoints:/{judge}" if judge else None
    return [JUDGE_FACTORIES[n](model=model) if n in JUDGE_FACTORIES else get_metric(n) for n in names]


def _col_mapping(args: argparse.Namespace) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    for item in args.col_map:
        param, sep, column = item.partition("=")
        if not sep:
            raise ValueError(f"--col-map {item!r}: use PARAM=COLUMN")
        mapping[param] = column
    if args.input_column:
        mapping["inputs"] = args.input_column
    return mapping


def run_eval(args: argparse.Namespace) -> int:
    from evaluation.runner import evaluate

    try:
        result = evaluate(
            args.data,
            model=f"endpoints:/{args.endpoint}" if args.endpoint else None,
            predictions=args.predictions,
            targets=args.targets,
            model_type=args.model_type,
            extra_metrics=_metrics(args.metric, args.judge),
            evaluator_config={"col_mapping": _col_mapping(args)},
            gateway_url=args.gateway_url,
            prompt_template=_template(args.prompt_template),
            concurrency=args.concurrency,
            retries=args.retries,
            row_timeout=args.row_timeout,
            cache=False if args.no_cache else (args.cache or True),
            log_to_tracking=not args.no_tracking,
            tracking_uri=args.tracking_db,
            run_name=args.run_name,
        )
    except (ValueError, KeyError, FileNotFoundError, RuntimeError) as exc:
        print(f"llm-gateway eval: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.report:
        report = Path(args.report)
        report.write_text(result.to_html() if report.suffix.lower() in (".html", ".htm") else result.to_json())
    if args.json:
        print(result.to_json())
    else:
        _print_summary(result)
    return EXIT_ROW_ERRORS if result.row_errors else EXIT_OK


def _print_summary(result: Any) -> None:
    width = max((len(k) for k in result.metrics), default=10)
    for key, value in result.metrics.items():
        print(f"{key:<{width}}  {value:.6g}")
    for key, reason in result.skipped_metrics.items():
        print(f"{key:<{width}}  skipped: {reason}")
    for key, error in result.metric_errors.items():
        print(f"{key:<{width}}  failed: {error}")
    print(f"rows: {len(result.table)}, errors: {result.row_errors}, run: {result.run_id or '-'}")
    if result.tracking_error:
        print(f"run not stored: {result.tracking_error}", file=sys.stderr)


def compare_runs(run_a: dict[str, Any], run_b: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per metric key in either run: both values and b - a."""
    a, b = run_a.get("metrics") or {}, run_b.get("metrics") or {}
    rows = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        delta = vb - va if isinstance(va, int | float) and isinstance(vb, int | float) else None
        rows.append({"metric": key, "a": va, "b": vb, "delta": delta})
    return rows


def run_compare(args: argparse.Namespace) -> int:
    from tracking.store import RunNotFound, open_store

    try:
        with open_store(args.tracking_db) as store:
            run_a, run_b = store.get_run(args.run_a), store.get_run(args.run_b)
    except RunNotFound as exc:
        print(f"llm-gateway eval-compare: no run {exc.args[0]!r}", file=sys.stderr)
        return EXIT_USAGE
    rows = compare_runs(run_a, run_b)
    if args.json:
        print(json.dumps({"run_a": args.run_a, "run_b": args.run_b, "metrics": rows}, indent=2))
        return EXIT_OK
    width = max((len(r["metric"]) for r in rows), default=6)

    def fmt(value: Any, sign: bool = False) -> str:
        return "-" if value is None else (f"{value:+.6g}" if sign else f"{value:.6g}")

    print(f"{'metric':<{width}}  {args.run_a[:12]:>12}  {args.run_b[:12]:>12}  {'delta':>12}")
    for r in rows:
        print(f"{r['metric']:<{width}}  {fmt(r['a']):>12}  {fmt(r['b']):>12}  {fmt(r['delta'], True):>12}")
    return EXIT_OK
