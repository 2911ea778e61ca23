"""`llm-gateway traces list|show|export|prune` and `llm-gateway runs list|show|export|compare`.

`gateway/cli.py` calls `register(subparsers)`; every leaf returns its exit code. The database is
`--db`, else `$LLM_GATEWAY_TRACKING_DB`, else the sqlite sink of `--config` (or of
`$LLM_GATEWAY_CONFIG`), else `./llm-gateway-traces.db`.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import IO, Any

import orjson

from tracking.rows import TRACE_COLUMNS
from tracking.store import DB_ENV_VAR, RunNotFound, Store, default_db_path, open_store

Command = Callable[[argparse.Namespace], int]


def register(subparsers: Any) -> None:
    """Add the `traces` and `runs` command groups to the gateway's argparse subparsers."""
    traces = subparsers.add_parser("traces", help="read back recorded calls")
    traces_sub = traces.add_subparsers(dest="traces_command", required=True)

    ls = _leaf(traces_sub, "list", "newest calls first", cmd_traces_list)
    _add_filters(ls)
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--cursor", help="next_cursor of the previous page (with --json)")
    ls.add_argument("--json", action="store_true", help="print the page as JSON")

    show = _leaf(traces_sub, "show", "one call, in full, as JSON", cmd_traces_show)
    show.add_argument("id")

    export = _leaf(traces_sub, "export", "every matching call, as JSON lines or CSV", cmd_traces_export)
    _add_filters(export)
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")

    prune = _leaf(traces_sub, "prune", "delete old calls", cmd_traces_prune)
    prune.add_argument("--older-than", required=True, help="a duration such as 30d or 12h, or a date")

    runs = subparsers.add_parser("runs", help="read back evaluation runs")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    runs_ls = _leaf(runs_sub, "list", "newest runs first", cmd_runs_list)
    runs_ls.add_argument("--limit", type=int, default=20)
    runs_ls.add_argument("--json", action="store_true")
    runs_show = _leaf(runs_sub, "show", "a run's params, metrics, tables and artifacts", cmd_runs_show)
    runs_show.add_argument("id")
    runs_show.add_argument("--json", action="store_true", help="include table rows")
    runs_export = _leaf(runs_sub, "export", "copy a run to an MLflow tracking server", cmd_runs_export)
    runs_export.add_argument("id")
    runs_export.add_argument("--mlflow", required=True, metavar="URI", help="the MLflow tracking server, http(s)://...")
    runs_export.add_argument("--experiment", default="llm-gateway-evaluation", help="created when missing")
    try:  # `runs compare` lives with evaluation, which owns what a run's metrics mean
        from evaluation.cli import add_compare_parser
    except ImportError:  # pragma: no cover - evaluation's dependencies not installed
        pass
    else:
        add_compare_parser(runs_sub)


def _leaf(sub: Any, name: str, help_text: str, func: Command) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
    parser.add_argument("--db", help=f"tracking database (default: ${DB_ENV_VAR} or the config's sqlite sink)")
    parser.add_argument("--config", help="gateway config whose tracking sqlite sink to read")
    parser.set_defaults(func=func)
    return parser


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint")
    parser.add_argument("--status", help="200, 4xx, ok or error")
    parser.add_argument("--since", help="a duration such as 2h (that long ago), unix seconds, or an ISO date")


def resolve_db(args: argparse.Namespace) -> str:
    if getattr(args, "db", None):
        return str(args.db)
    if os.environ.get(DB_ENV_VAR):
        return os.environ[DB_ENV_VAR]
    config = getattr(args, "config", None) or os.environ.get("LLM_GATEWAY_CONFIG")
    if config:
        path = _sqlite_path_from_config(config)
        if path:
            return path
    return default_db_path()


def _sqlite_path_from_config(config_path: str) -> str | None:
    import yaml

    from tracking.config import TrackingSettings

    try:
        with open(config_path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
        settings = TrackingSettings.model_validate(data.get("tracking") or {})
    except (OSError, ValueError, yaml.YAMLError):
        return None  # `check-config` reports a broken file; here we only look for a path
    for sink in settings.sinks:
        if sink.type == "sqlite":
            return str(sink.path)
    return None


def _open(args: argparse.Namespace) -> Store:
    return open_store(resolve_db(args))


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _time(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).isoformat(sep=" ", timespec="seconds")


def _table(headers: list[str], rows: Iterable[list[str]], out: IO[str]) -> None:
    rows = list(rows)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    for line in [headers, *rows]:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() + "\n")


def _dump(value: Any, out: IO[str]) -> None:
    out.write(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")


def cmd_traces_list(args: argparse.Namespace) -> int:
    try:
        with _open(args) as store:
            page = store.list_traces(args.endpoint, args.status, args.since, limit=args.limit, cursor=args.cursor)
    except ValueError as exc:
        return _fail(str(exc))
    if args.json:
        _dump(page, sys.stdout)
        return 0
    rows = [
        [
            t["id"],
            _time(t["timestamp"]),
            t["endpoint"],
            str(t["status"]),
            t["response_model"] or t["model"],
            "-" if t["usage"]["total_tokens"] is None else str(t["usage"]["total_tokens"]),
            f"{t['latency_ms']:.0f}",
            "stream" if t["stream"] else "",
        ]
        for t in page["traces"]
    ]
    _table(["ID", "TIME", "ENDPOINT", "STATUS", "MODEL", "TOKENS", "MS", ""], rows, sys.stdout)
    if page["next_cursor"]:
        print(f"(more: --cursor {page['next_cursor']})")
    return 0


def cmd_traces_show(args: argparse.Namespace) -> int:
    with _open(args) as store:
        trace = store.get_trace(args.id)
    if trace is None:
        return _fail(f"no trace with id {args.id!r}")
    _dump(trace, sys.stdout)
    return 0


def _flat(trace: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in trace.items() if k != "usage"}
    row.update(trace["usage"])
    for key in ("request", "response", "error"):
        if row[key] is not None:
            row[key] = orjson.dumps(row[key]).decode()
    return row


def cmd_traces_export(args: argparse.Namespace) -> int:
    out: IO[str] = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8", newline="")
    count = 0
    try:
        with _open(args) as store:
            traces = store.iter_traces(args.endpoint, args.status, args.since)
            if args.format == "csv":
                writer = csv.DictWriter(out, fieldnames=list(TRACE_COLUMNS))
                writer.writeheader()
                for trace in traces:
                    writer.writerow(_flat(trace))
                    count += 1
            else:
                for trace in traces:
                    out.write(orjson.dumps(trace, option=orjson.OPT_NON_STR_KEYS).decode() + "\n")
                    count += 1
    except ValueError as exc:
        return _fail(str(exc))
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"exported {count} trace(s)", file=sys.stderr)
    return 0


def cmd_traces_prune(args: argparse.Namespace) -> int:
    try:
        with _open(args) as store:
            deleted = store.prune_traces(args.older_than)
    except ValueError as exc:
        return _fail(str(exc))
    print(f"deleted {deleted} trace(s) older than {args.older_than}")
    return 0


def cmd_runs_list(args: argparse.Namespace) -> int:
    with _open(args) as store:
        runs = store.list_runs(limit=args.limit)
    if args.json:
        _dump(runs, sys.stdout)
        return 0
    rows = [
        [
            r["id"],
            r["name"] or "-",
            r["status"],
            _time(r["start_time"]),
            "-" if r["end_time"] is None else f"{r['end_time'] - r['start_time']:.1f}s",
        ]
        for r in runs
    ]
    _table(["ID", "NAME", "STATUS", "STARTED", "DURATION"], rows, sys.stdout)
    return 0


def cmd_runs_export(args: argparse.Namespace) -> int:
    """The run's params, metrics and tables (eval_results_table shows in MLflow's evaluation view)."""
    from tracking.sinks.mlflow import MlflowError, export_run

    with _open(args) as store:
        try:
            run = store.get_run(args.id)
        except RunNotFound:
            return _fail(f"no run with id {args.id!r}")
    try:
        # MLFLOW_TRACKING_TOKEN, as MLflow's own clients read it, for servers behind auth.
        mlflow_run = export_run(run, args.mlflow, args.experiment, token=os.environ.get("MLFLOW_TRACKING_TOKEN"))
    except MlflowError as exc:
        return _fail(f"export to {args.mlflow} failed: {exc}")
    print(f"run {args.id} -> MLflow run {mlflow_run} (experiment {args.experiment!r})")
    return 0


def cmd_runs_show(args: argparse.Namespace) -> int:
    with _open(args) as store:
        try:
            run = store.get_run(args.id)
        except RunNotFound:
            return _fail(f"no run with id {args.id!r}")
    if not args.json:
        # Tables can hold thousands of rows; the summary shows their size, --json shows them.
        run["tables"] = {name: f"{len(rows)} row(s)" for name, rows in run["tables"].items()}
    _dump(run, sys.stdout)
    return 0
