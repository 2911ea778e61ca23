"""TraceRecord <-> flat SQL row, shared by the SQL sinks and the store so the columns agree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from tracking.records import TraceRecord

# Order matters: it is the placeholder order of every INSERT and SELECT.
TRACE_COLUMNS: tuple[str, ...] = (
    "id",
    "timestamp",
    "endpoint",
    "endpoint_type",
    "provider",
    "model",
    "route",
    "stream",
    "status",
    "client_request_id",
    "request",
    "response",
    "error",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "latency_ms",
    "ttft_ms",
    "response_model",
    "upstream_id",
    "client",
    "finish_reason",
    "retries",
    "fallback",
    "key_name",
)
_JSON_COLUMNS = ("request", "response", "error")


def _json(value: dict[str, Any] | None) -> str | None:
    # OPT_NON_STR_KEYS: a provider echoing {1: ...} must not make the whole batch fail.
    return None if value is None else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def to_row(r: TraceRecord) -> tuple[Any, ...]:
    u = r.usage
    return (
        r.id,
        r.timestamp,
        r.endpoint,
        r.endpoint_type,
        r.provider,
        r.model,
        r.route,
        int(r.stream),
        r.status,
        r.client_request_id,
        _json(r.request),
        _json(r.response),
        _json(r.error),
        u.prompt_tokens,
        u.completion_tokens,
        u.total_tokens,
        r.latency_ms,
        r.ttft_ms,
        r.response_model,
        r.upstream_id,
        r.client,
        r.finish_reason,
        r.retries,
        r.fallback,
        r.key_name,
    )


def from_row(row: Sequence[Any]) -> dict[str, Any]:
    """A row in TRACE_COLUMNS order -> the dict shape of `TraceRecord.to_dict()`."""
    data = dict(zip(TRACE_COLUMNS, row, strict=True))
    for key in _JSON_COLUMNS:
        if isinstance(data[key], str | bytes):
            data[key] = orjson.loads(data[key])
    data["stream"] = bool(data["stream"])
    data["usage"] = {
        "prompt_tokens": data.pop("prompt_tokens"),
        "completion_tokens": data.pop("completion_tokens"),
        "total_tokens": data.pop("total_tokens"),
    }
    return data
