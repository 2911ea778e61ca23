"""`GET /api/traces` and `GET /api/traces/{id}`: the recorded calls, read from the sqlite sink's file.

Admin routes: with `auth:` configured they need an admin key (gateway/auth.py). Queries run in a
worker thread through `tracking.store`, so a slow disk never blocks the event loop, and each
request opens its own read connection (WAL lets it read while the sink writes).

    GET /api/traces?endpoint=chat&status=error&since=2h&limit=50
    -> {"traces": [record, ...], "next_cursor": "..." | null}      newest first
    GET /api/traces?cursor=<next_cursor>                             the next page, same filters
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import InvalidRequest
from gateway.responses import ORJSONResponse
from tracking.store import open_store
from tracking.timeparse import parse_since

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
FILTERS = ("endpoint", "status", "since", "limit", "cursor")
_STATUS = re.compile(r"^(?:[1-5]\d\d|[1-5]xx|ok|error)$", re.IGNORECASE)


def _not_found(message: str, code: str) -> Response:
    body = {"error": {"message": message, "type": "not_found_error", "param": None, "code": code}}
    return ORJSONResponse(body, status_code=404)


def store_path(request: Request) -> str | None:
    """The file of the first configured sqlite sink, or None when no sqlite sink is configured."""
    settings = request.app.state.config.tracking_settings()
    for sink in settings.sinks:
        if sink.type == "sqlite":
            return str(Path(sink.path).expanduser())
    return None


def _filters(request: Request) -> dict[str, Any]:
    """The validated query; each error names its parameter."""
    query = request.query_params
    unknown = sorted(set(query) - set(FILTERS))
    if unknown:
        raise InvalidRequest(
            f"{unknown[0]}: unknown filter (known: {', '.join(FILTERS)})",
            param=unknown[0],
        )
    filters: dict[str, Any] = {"limit": DEFAULT_LIMIT}
    if (endpoint := query.get("endpoint")) is not None:
        filters["endpoint"] = endpoint
    if (status := query.get("status")) is not None:
        if not _STATUS.match(status):
            raise InvalidRequest(
                f"status: invalid filter {status!r} (use a status like 200, a class like 4xx, ok or error)",
                param="status",
            )
        filters["status"] = status
    if (since := query.get("since")) is not None:
        try:
            filters["since"] = parse_since(since)
        except ValueError as exc:
            raise InvalidRequest(f"since: {exc}", param="since") from None
    if (limit := query.get("limit")) is not None:
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            raise InvalidRequest(f"limit: must be an integer from 1 to {MAX_LIMIT}, got {limit!r}", param="limit")
        filters["limit"] = int(limit)
    if (cursor := query.get("cursor")) is not None:
        filters["cursor"] = cursor
    return filters


def _list(path: str, filters: dict[str, Any]) -> dict[str, Any]:
    if not Path(path).exists():  # nothing recorded yet; don't create the file from a read
        return {"traces": [], "next_cursor": None}
    with open_store(path) as store:
        try:
            return store.list_traces(**filters)
        except ValueError as exc:  # the other filters are checked already: only the cursor is left
            raise InvalidRequest(f"cursor: {exc}", param="cursor") from None


def _get(path: str, trace_id: str) -> dict[str, Any] | None:
    if not Path(path).exists():
        return None
    with open_store(path) as store:
        return store.get_trace(trace_id)


async def list_traces(request: Request) -> Response:
    filters = _filters(request)
    path = store_path(request)
    if path is None:
        return _not_found("no sqlite tracking sink is configured; /api/traces reads its file", "no_trace_store")
    return ORJSONResponse(await run_in_threadpool(_list, path, filters))


async def get_trace(request: Request) -> Response:
    trace_id = request.path_params["trace_id"]
    path = store_path(request)
    if path is None:
        return _not_found("no sqlite tracking sink is configured; /api/traces reads its file", "no_trace_store")
    trace = await run_in_threadpool(_get, path, trace_id)
    if trace is None:
        return _not_found(f"trace {trace_id!r} not found", "trace_not_found")
    return ORJSONResponse(trace)


routes = [
    Route("/api/traces", list_traces, methods=["GET"]),
    Route("/api/traces/{trace_id:str}", get_trace, methods=["GET"]),
]
