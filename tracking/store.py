"""The query side of tracking: read traces back, and record evaluation runs.

A sync API over the same SQLite file the trace sink writes (WAL lets both work at once). The CLI,
the `/api/traces` routes and the evaluation runner all go through `open_store()`.
"""

from __future__ import annotations

import base64
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from tracking.migrations import connect
from tracking.rows import TRACE_COLUMNS, from_row
from tracking.timeparse import parse_since

DEFAULT_DB_PATH = "llm-gateway-traces.db"
DB_ENV_VAR = "LLM_GATEWAY_TRACKING_DB"

RunStatus = Literal["RUNNING", "FINISHED", "FAILED"]
Since = float | int | str | datetime


class RunNotFound(KeyError):
    """Raised when a run id is not in the store."""


def default_db_path() -> str:
    """`$LLM_GATEWAY_TRACKING_DB`, else `./llm-gateway-traces.db` (the sqlite sink's default)."""
    return os.environ.get(DB_ENV_VAR) or DEFAULT_DB_PATH


def open_store(path_or_url: str | None = None) -> Store:
    """Open the store at a SQLite path or `sqlite:///path` URL; None means the default trace database."""
    target = path_or_url or default_db_path()
    if target.startswith("sqlite:///"):
        target = target.removeprefix("sqlite:///")
    elif "://" in target:
        raise ValueError(f"unsupported store {target!r}: only SQLite paths or sqlite:///path URLs are supported")
    if target != ":memory:":
        Path(target).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return Store(str(Path(target).expanduser()) if target != ":memory:" else target)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY, default=str).decode()


def _encode_cursor(timestamp: float, trace_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([timestamp, trace_id])).decode()


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        timestamp, trace_id = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        return float(timestamp), str(trace_id)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc


def _status_clause(status: int | str) -> tuple[str, list[Any]]:
    """200 -> exact; 'ok' -> < 400; 'error' -> >= 400; '4xx' -> that hundred."""
    text = str(status).lower()
    if text == "ok":
        return "status < 400", []
    if text == "error":
        return "status >= 400", []
    if len(text) == 3 and text[0].isdigit() and text[1:] == "xx":
        base = int(text[0]) * 100
        return "status >= ? AND status < ?", [base, base + 100]
    if text.isdigit():
        return "status = ?", [int(text)]
    raise ValueError(f"invalid status filter {status!r} (use 200, 4xx, ok or error)")


class Store:
    """Traces and runs in one SQLite database; safe to share between threads."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn = connect(path)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, params: Any = (), *, many: bool = False) -> int:
        with self._lock:
            cur = self._conn.executemany(sql, params) if many else self._conn.execute(sql, params)
            return cur.rowcount

    def _read(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # --- runs -------------------------------------------------------------------------------

    def create_run(self, name: str | None = None, params: dict[str, Any] | None = None) -> str:
        run_id = uuid.uuid4().hex
        self._write(
            "INSERT INTO runs (id, name, status, start_time) VALUES (?, ?, 'RUNNING', ?)", (run_id, name, time.time())
        )
        if params:
            self.log_params(run_id, params)
        return run_id

    def _require_run(self, run_id: str) -> None:
        if not self._read("SELECT 1 FROM runs WHERE id = ?", (run_id,)):
            raise RunNotFound(run_id)

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        self._require_run(run_id)
        rows = [(run_id, str(k), _dumps(v)) for k, v in params.items()]
        self._write("INSERT OR REPLACE INTO run_params (run_id, key, value) VALUES (?, ?, ?)", rows, many=True)

    def log_metrics(self, run_id: str, metrics: dict[str, float]) -> None:
        self._require_run(run_id)
        now = time.time()
        rows = [(run_id, str(k), None if v is None else float(v), now) for k, v in metrics.items()]
        self._write(
            "INSERT OR REPLACE INTO run_metrics (run_id, key, value, timestamp) VALUES (?, ?, ?, ?)", rows, many=True
        )

    def log_table(self, run_id: str, name: str, rows: list[dict[str, Any]]) -> None:
        self._require_run(run_id)
        self._write(
            "INSERT OR REPLACE INTO run_tables (run_id, name, rows) VALUES (?, ?, ?)", (run_id, name, _dumps(rows))
        )

    def log_artifact(self, run_id: str, name: str, data: bytes) -> None:
        self._require_run(run_id)
        self._write(
            "INSERT OR REPLACE INTO run_artifacts (run_id, name, data) VALUES (?, ?, ?)", (run_id, name, bytes(data))
        )

    def finish_run(self, run_id: str, status: RunStatus = "FINISHED") -> None:
        if status not in ("FINISHED", "FAILED", "RUNNING"):
            raise ValueError(f"invalid run status {status!r} (use FINISHED or FAILED)")
        self._require_run(run_id)
        self._write("UPDATE runs SET status = ?, end_time = ? WHERE id = ?", (status, time.time(), run_id))

    def list_runs(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first, without params/metrics/tables (use `get_run` for those)."""
        rows = self._read(
            "SELECT id, name, status, start_time, end_time FROM runs ORDER BY start_time DESC, id DESC LIMIT ?",
            (limit,),
        )
        return [dict(zip(("id", "name", "status", "start_time", "end_time"), row, strict=True)) for row in rows]

    def get_run(self, run_id: str) -> dict[str, Any]:
        """The run with its params, metrics, tables (name -> rows) and artifact names."""
        rows = self._read("SELECT id, name, status, start_time, end_time FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise RunNotFound(run_id)
        run = dict(zip(("id", "name", "status", "start_time", "end_time"), rows[0], strict=True))
        params = self._read("SELECT key, value FROM run_params WHERE run_id = ? ORDER BY key", (run_id,))
        run["params"] = {k: orjson.loads(v) for k, v in params}
        metrics = self._read("SELECT key, value FROM run_metrics WHERE run_id = ? ORDER BY key", (run_id,))
        run["metrics"] = dict(metrics)
        tables = self._read("SELECT name, rows FROM run_tables WHERE run_id = ? ORDER BY name", (run_id,))
        run["tables"] = {name: orjson.loads(data) for name, data in tables}
        artifacts = self._read("SELECT name FROM run_artifacts WHERE run_id = ? ORDER BY name", (run_id,))
        run["artifacts"] = [name for (name,) in artifacts]
        return run

    def get_table(self, run_id: str, name: str) -> list[dict[str, Any]]:
        rows = self._read("SELECT rows FROM run_tables WHERE run_id = ? AND name = ?", (run_id, name))
        if not rows:
            raise KeyError(f"run {run_id} has no table {name!r}")
        table: list[dict[str, Any]] = orjson.loads(rows[0][0])
        return table

    def get_artifact(self, run_id: str, name: str) -> bytes:
        rows = self._read("SELECT data FROM run_artifacts WHERE run_id = ? AND name = ?", (run_id, name))
        if not rows:
            raise KeyError(f"run {run_id} has no artifact {name!r}")
        return bytes(rows[0][0])

    # --- traces -----------------------------------------------------------------------------

    def _trace_filters(
        self, endpoint: str | None, status: int | str | None, since: Since | None, until: Since | None = None
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if endpoint is not None:
            where.append("endpoint = ?")
            params.append(endpoint)
        if status is not None:
            clause, values = _status_clause(status)
            where.append(clause)
            params.extend(values)
        if since is not None:
            where.append("timestamp >= ?")
            params.append(parse_since(since))
        if until is not None:
            where.append("timestamp < ?")
            params.append(parse_since(until))
        return where, params

    def list_traces(
        self,
        endpoint: str | None = None,
        status: int | str | None = None,
        since: Since | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """Newest first: `{"traces": [record dicts], "next_cursor": str | None}`.

        Pass `next_cursor` back as `cursor` for the next page; it is stable while new traces arrive.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        where, params = self._trace_filters(endpoint, status, since)
        if cursor is not None:
            timestamp, trace_id = _decode_cursor(cursor)
            where.append("(timestamp < ? OR (timestamp = ? AND id < ?))")
            params.extend([timestamp, timestamp, trace_id])
        sql = f"SELECT {', '.join(TRACE_COLUMNS)} FROM traces"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY timestamp DESC, id DESC LIMIT ?"
        rows = self._read(sql, [*params, limit + 1])
        traces = [from_row(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = traces[-1]
            next_cursor = _encode_cursor(last["timestamp"], last["id"])
        return {"traces": traces, "next_cursor": next_cursor}

    def iter_traces(
        self,
        endpoint: str | None = None,
        status: int | str | None = None,
        since: Since | None = None,
        page_size: int = 1000,
    ) -> Iterator[dict[str, Any]]:
        """Every matching trace, newest first, one page in memory at a time (for export)."""
        cursor = None
        while True:
            page = self.list_traces(endpoint, status, since, limit=page_size, cursor=cursor)
            yield from page["traces"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def get_trace(self, trace_id: str) -> dict[str, Any] | None:
        rows = self._read(f"SELECT {', '.join(TRACE_COLUMNS)} FROM traces WHERE id = ?", (trace_id,))
        return from_row(rows[0]) if rows else None

    def count_traces(self, endpoint: str | None = None, status: int | str | None = None) -> int:
        where, params = self._trace_filters(endpoint, status, None)
        sql = "SELECT count(*) FROM traces" + (" WHERE " + " AND ".join(where) if where else "")
        return int(self._read(sql, params)[0][0])

    def prune_traces(self, older_than: Since) -> int:
        """Delete traces recorded before `older_than` ('30d' = older than 30 days); returns how many."""
        return self._write("DELETE FROM traces WHERE timestamp < ?", (parse_since(older_than),))
