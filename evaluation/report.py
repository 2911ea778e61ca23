"""Reports: JSON, and a self-contained HTML page (aggregates, per-row table, errors highlighted)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from evaluation.results import EvaluationResult


def to_json(result: EvaluationResult, *, indent: bool = True) -> str:
    option = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(result.to_dict(), option=option, default=str).decode()


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f3f3f3;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.error td{background:#fde8e8}
td.cell-error{color:#a00}
.note{color:#666}
td div{max-width:40em;max-height:12em;overflow:auto;white-space:pre-wrap}
"""


def _cell(value: Any) -> tuple[str, str]:
    if value is None:
        return "", ""
    if isinstance(value, bool):
        return str(value).lower(), ""
    if isinstance(value, float):
        return f"{value:.6g}", "num"
    if isinstance(value, int):
        return str(value), "num"
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return f"<div>{html.escape(text)}</div>", ""


def _kv_table(title: str, pairs: Mapping[str, Any]) -> str:
    if not pairs:
        return ""
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td class='{cls}'>{text}</td></tr>"
        for k, (text, cls) in ((k, _cell(v)) for k, v in pairs.items())
    )
    return f"<h2>{html.escape(title)}</h2><table>{rows}</table>"


def _rows_table(rows: Sequence[Mapping[str, Any]]) -> str:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for column in columns:
            text, cls = _cell(row.get(column))
            if column == "error" or column.endswith("/error"):
                cls = f"{cls} cell-error".strip()
            cells.append(f"<td class='{cls}'>{text}</td>")
        row_class = " class='error'" if row.get("status") == "error" else ""
        body.append(f"<tr{row_class}>{''.join(cells)}</tr>")
    return f"<h2>Rows ({len(rows)})</h2><table><tr>{head}</tr>{''.join(body)}</table>"


def to_html(result: EvaluationResult) -> str:
    """One page, no external assets: opens offline and can be attached to an issue as is."""
    params = {k: v for k, v in result.params.items() if k in ("model", "model_type", "dataset", "dataset_digest")}
    summary = {
        "run_id": result.run_id,
        **params,
        "rows": len(result.table),
        "rows with errors": result.row_errors,
    }
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Evaluation report</title>",
        f"<style>{_STYLE}</style></head><body><h1>Evaluation report</h1>",
        _kv_table("Run", summary),
        _kv_table("Metrics", dict(sorted(result.metrics.items()))),
        _kv_table("Skipped metrics", result.skipped_metrics),
        _kv_table("Metric errors", result.metric_errors),
        _rows_table(result.table),
        "</body></html>",
    ]
    return "".join(parts)
