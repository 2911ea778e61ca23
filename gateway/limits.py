"""Limits on what a client may send, checked before a request reaches validation, tracking or a provider.

The body size limit (413) is enforced while the body is read (`gateway.max_body_bytes`). The
limits here are `gateway:` settings with defaults far above any real call; each refusal names
the field, the limit and the setting that raises it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from gateway.errors import GatewayError, InvalidRequest


class HeadersTooLarge(GatewayError):
    status_code = 431
    error_type = "invalid_request_error"


class HardeningSettings(BaseModel):
    """The `gateway:` keys that bound hostile input and upstream answers (mixed into GatewaySettings)."""

    max_messages: int = Field(2048, gt=0)  # OpenAI's own limit on `messages`
    # Characters of prompt text in one call (all messages, prompt or input); 4M is ~1M tokens.
    max_content_chars: int = Field(4_000_000, gt=0)
    # JSON nesting depth of a request body; tool schemas rarely pass 10, and sinks encode at most 254.
    max_json_depth: int = Field(64, gt=0, le=200)
    max_header_bytes: int = Field(32 * 1024, gt=0)  # all request header names and values together
    # An upstream answer (a whole body, or a whole stream) past this is cut off with a 502.
    max_upstream_body_bytes: int = Field(64 * 1024 * 1024, gt=0)
    # http:// api_base URLs for private-network hosts (loopback is always allowed); see gateway/egress.py.
    allow_insecure_http: bool = False


def check_request(
    scope: Mapping[str, Any], body: dict[str, Any], settings: HardeningSettings, *, raw: bytes | None = None
) -> None:
    """431 for oversized headers; 400 for too many messages, too much text or too deep a body.

    `raw`, the body's bytes, lets the depth and text checks be skipped when they cannot fail: a
    body holds at least one `{` or `[` per level and a byte per character of text (C-speed counts,
    versus walking every value in Python).
    """
    header_bytes = sum(map(len, itertools.chain.from_iterable(scope.get("headers", ()))))
    if header_bytes > settings.max_header_bytes:
        raise HeadersTooLarge(
            f"headers: {header_bytes} bytes is over the limit of {settings.max_header_bytes} "
            "(gateway.max_header_bytes)",
            param="headers",
            code="headers_too_large",
        )
    could_be_deep = raw is None or raw.count(b"{") + raw.count(b"[") > settings.max_json_depth
    if could_be_deep and json_depth(body, settings.max_json_depth) > settings.max_json_depth:
        raise InvalidRequest(
            f"body: nested deeper than {settings.max_json_depth} levels (gateway.max_json_depth)",
            param="body",
            code="too_deeply_nested",
        )
    messages = body.get("messages")
    if isinstance(messages, list) and len(messages) > settings.max_messages:
        raise InvalidRequest(
            f"messages: {len(messages)} messages is over the limit of {settings.max_messages} (gateway.max_messages)",
            param="messages",
            code="too_many_messages",
        )
    # A character of text takes at least one byte of the body, so a short body can't be over.
    if raw is not None and len(raw) <= settings.max_content_chars:
        return
    field, chars = content_chars(body)
    if chars > settings.max_content_chars:
        raise InvalidRequest(
            f"{field}: {chars} characters of content is over the limit of {settings.max_content_chars} "
            "(gateway.max_content_chars)",
            param=field,
            code="content_too_long",
        )


def json_depth(value: Any, stop_after: int) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0); stops counting past `stop_after`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > stop_after:
                return deepest
        stack.extend((child, depth) for child in children if isinstance(child, dict | list))
    return deepest


def content_chars(body: dict[str, Any]) -> tuple[str, int]:
    """(field, characters of text) for the field that carries the prompt."""
    for field in ("messages", "prompt", "input"):
        value = body.get(field)
        if value is None:
            continue
        if field == "messages" and isinstance(value, list):
            return field, sum(_text_chars(m.get("content")) for m in value if isinstance(m, dict))
        return field, _text_chars(value)
    return "body", 0


def _text_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if isinstance(part, str):
                total += len(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                total += len(part["text"])
        return total
    return 0
