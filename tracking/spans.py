"""TraceRecord -> OpenTelemetry span, following the GenAI semantic conventions.

Shared by the `otlp` sink (any OTLP backend) and the `mlflow` sink (MLflow ingests OTLP), so a
call looks the same wherever it is exported. Needs `pip install 'llm-gateway[otlp]'`.

One record becomes one finished CLIENT span named `"{operation} {model}"`, e.g. `chat gpt-4o-mini`:
https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/. Its trace and span ids are derived
from the record id, so exporting a record twice (a spool replay) sends the same span again, which
backends that key on the trace id (MLflow does) store once.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from tracking.records import TraceRecord

try:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
except ImportError as exc:  # pragma: no cover - exercised only without the extra installed
    raise ImportError("exporting spans needs OpenTelemetry: pip install 'llm-gateway[otlp]'") from exc

SCOPE_NAME = "llm-gateway"


def _version() -> str:
    try:
        return importlib.metadata.version("llm-gateway")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


_SCOPE = InstrumentationScope(SCOPE_NAME, _version())

# gen_ai.operation.name for each endpoint type (well-known values of the semantic conventions).
OPERATIONS: dict[str, str] = {
    "llm/v1/chat": "chat",
    "llm/v1/completions": "text_completion",
    "llm/v1/embeddings": "embeddings",
}

# gen_ai.provider.name where the conventions name a provider differently from our registry.
PROVIDER_NAMES: dict[str, str] = {
    "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock",
    "amazon-bedrock": "aws.bedrock",
    "mistral": "mistral_ai",
    "xai": "x_ai",
}

# Request parameters with a gen_ai.request.* attribute: OpenAI body key -> attribute suffix.
_REQUEST_PARAMS: dict[str, str] = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "seed": "seed",
    "n": "choice.count",
}

AttributeHook = Callable[[TraceRecord], Mapping[str, Any]]


def span_ids(record_id: str) -> tuple[int, int]:
    """The (trace id, span id) of a record: stable, so a replayed record is the same span."""
    digest = hashlib.sha256(record_id.encode()).digest()
    trace_id = int.from_bytes(digest[:16], "big") or 1  # an all-zero id is invalid in OTLP
    span_id = int.from_bytes(digest[16:24], "big") or 1
    return trace_id, span_id


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


def _text_parts(content: Any) -> list[dict[str, Any]]:
    """OpenAI message content (a string or a list of parts) -> GenAI `parts`."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                parts.append({"type": "text", "content": part.get("text", "")})
            elif isinstance(part, Mapping):
                parts.append({"type": str(part.get("type", "unknown"))})  # images etc.: the kind, not the bytes
    return parts


def _tool_call_parts(tool_calls: Any) -> list[dict[str, Any]]:
    parts = []
    for call in tool_calls if isinstance(tool_calls, list) else []:
        if not isinstance(call, Mapping):
            continue
        function = call.get("function") if isinstance(call.get("function"), Mapping) else {}
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": function.get("name"),
                "arguments": function.get("arguments"),
            }
        )
    return parts


def input_messages(request: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The request's prompt as `gen_ai.input.messages` (chat messages, or a completion prompt)."""
    messages = request.get("messages")
    if isinstance(messages, list):
        out = []
        for message in messages:
            if not isinstance(message, Mapping):
                continue
            parts = _text_parts(message.get("content")) + _tool_call_parts(message.get("tool_calls"))
            if message.get("role") == "tool":
                parts = [
                    {
                        "type": "tool_call_response",
                        "id": message.get("tool_call_id"),
                        "response": message.get("content"),
                    }
                ]
            if parts:  # metadata capture leaves roles without content: nothing to show
                out.append({"role": message.get("role", "user"), "parts": parts})
        return out or None
    prompt = request.get("prompt")
    if isinstance(prompt, str):
        return [{"role": "user", "parts": [{"type": "text", "content": prompt}]}]
    if isinstance(prompt, list):
        return [{"role": "user", "parts": [{"type": "text", "content": str(p)}]} for p in prompt]
    return None


def output_messages(response: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The response's choices as `gen_ai.output.messages`; None for embeddings."""
    choices = response.get("choices")
    if not isinstance(choices, list):
        return None
    out = []
    for choice in choices:
        if not isinstance(choice, Mapping):
            continue
        message = choice.get("message")
        if isinstance(message, Mapping):
            parts = _text_parts(message.get("content")) + _tool_call_parts(message.get("tool_calls"))
            role = message.get("role", "assistant")
        else:
            parts = _text_parts(choice.get("text"))
            role = "assistant"
        if parts:
            out.append({"role": role, "parts": parts, "finish_reason": choice.get("finish_reason") or ""})
    return out or None


def operation_name(record: TraceRecord) -> str:
    return OPERATIONS.get(record.endpoint_type, record.endpoint_type)


def provider_name(record: TraceRecord) -> str:
    return PROVIDER_NAMES.get(record.provider, record.provider)


def genai_attributes(record: TraceRecord, *, capture_content: bool = True) -> dict[str, Any]:
    """The span attributes of one call: `gen_ai.*` from the conventions, plus `llm_gateway.*` of ours.

    Args:
        capture_content: add `gen_ai.input.messages` / `gen_ai.output.messages` (JSON strings) when
            the record carries content; the writer has already applied capture mode and redaction.
    """
    usage = record.usage
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": operation_name(record),
        "gen_ai.provider.name": provider_name(record),
        "gen_ai.request.model": record.model,
        "http.response.status_code": record.status,
        "llm_gateway.record_id": record.id,
        "llm_gateway.endpoint": record.endpoint,
        "llm_gateway.endpoint_type": record.endpoint_type,
        "llm_gateway.route": record.route,
        "llm_gateway.stream": record.stream,
        "llm_gateway.latency_ms": float(record.latency_ms),
        "llm_gateway.retries": record.retries,
    }
    optional: dict[str, Any] = {
        "gen_ai.response.model": record.response_model,
        "gen_ai.response.id": record.upstream_id,
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
        "llm_gateway.usage.total_tokens": usage.total_tokens,
        "llm_gateway.ttft_ms": None if record.ttft_ms is None else float(record.ttft_ms),
        "llm_gateway.client_request_id": record.client_request_id,
        "llm_gateway.fallback": record.fallback,
        "llm_gateway.key_name": record.key_name,
        "client.address": record.client,
    }
    attrs.update({k: v for k, v in optional.items() if v is not None})
    if record.finish_reason:
        attrs["gen_ai.response.finish_reasons"] = (record.finish_reason,)
    request = record.request or {}
    for key, suffix in _REQUEST_PARAMS.items():
        value = request.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attrs[f"gen_ai.request.{suffix}"] = value
    stop = request.get("stop")
    if isinstance(stop, str):
        attrs["gen_ai.request.stop_sequences"] = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        attrs["gen_ai.request.stop_sequences"] = tuple(stop)
    if record.error is not None or record.status >= 400:
        error = record.error or {}
        attrs["error.type"] = str(error.get("type") or record.status)
    if capture_content:
        if record.request is not None and (messages := input_messages(record.request)) is not None:
            attrs["gen_ai.input.messages"] = _json(messages)
        if record.response is not None and (choices := output_messages(record.response)) is not None:
            attrs["gen_ai.output.messages"] = _json(choices)
    return attrs


def record_span(
    record: TraceRecord,
    resource: Resource,
    *,
    capture_content: bool = True,
    extra_attributes: AttributeHook | None = None,
) -> ReadableSpan:
    """One finished CLIENT span for one call: start = the record's timestamp, end = start + latency.

    Args:
        extra_attributes: backend-specific attributes to add (the mlflow sink adds MLflow's own).
    """
    trace_id, span_id = span_ids(record.id)
    context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    start = int(record.timestamp * 1e9)
    end = start + max(0, int(record.latency_ms * 1e6))
    attributes = genai_attributes(record, capture_content=capture_content)
    if extra_attributes is not None:
        attributes.update(extra_attributes(record))
    if record.error is not None or record.status >= 400:
        message = (record.error or {}).get("message") or f"HTTP {record.status}"
        status = Status(StatusCode.ERROR, str(message))
    else:
        status = Status(StatusCode.OK)
    return ReadableSpan(
        name=f"{operation_name(record)} {record.model}",
        context=context,
        parent=None,
        resource=resource,
        attributes=attributes,
        kind=SpanKind.CLIENT,
        instrumentation_scope=_SCOPE,
        status=status,
        start_time=start,
        end_time=end,
    )


def record_spans(
    records: Sequence[TraceRecord],
    resource: Resource,
    *,
    capture_content: bool = True,
    extra_attributes: AttributeHook | None = None,
) -> list[ReadableSpan]:
    return [
        record_span(r, resource, capture_content=capture_content, extra_attributes=extra_attributes) for r in records
    ]


def make_resource(service_name: str, attributes: Mapping[str, Any] | None = None) -> Resource:
    """The resource every span carries: `service.name` plus the user's extra resource attributes."""
    # Resource(...) rather than Resource.create(): no environment or host detection per sink.
    return Resource({"service.name": service_name, "telemetry.sdk.language": "python", **(attributes or {})})
