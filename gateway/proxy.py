"""The call flow shared by the OpenAI and MLflow routes: endpoint -> provider -> response + record."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pydantic
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope

from gateway import routing
from gateway.auth import authorize
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    PayloadTooLarge,
    UpstreamTimeout,
    client_status,
    invalid_request_from,
)
from gateway.limits import check_request
from gateway.providers.base import Provider, StreamChunk, StreamState, stream_batches
from gateway.responses import BytesResponse, ProxyResponse, RawHeaders, SSEResponse
from gateway.router import Endpoint
from gateway.schemas import SCHEMAS
from gateway.streaming import DONE, encode_sse, encode_sse_error
from gateway.tap import CallRecorder, StreamAssembler

logger = logging.getLogger("gateway.proxy")
SSE_HEADERS = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


async def read_json(receive: Receive, length: str | None, max_bytes: int) -> tuple[dict[str, Any], bytes]:
    """The request body as a JSON object, and its bytes; 413 past max_bytes, 400 when not a JSON object.

    `length` is the Content-Length header, when sent: a body announced as too large is refused unread."""
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise PayloadTooLarge(f"body: {length} bytes is over the limit of {max_bytes}", param="body")
    body = await _receive_body(receive, max_bytes)
    if not body:
        raise InvalidRequest("body: a JSON object is required", param="body")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"body: invalid JSON ({exc})", param="body") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body: must be a JSON object", param="body")
    return data, body


async def _receive_body(receive: Receive, max_bytes: int) -> bytes:
    """The body straight from ASGI messages: usually one, with no copy (Request.stream() is an async
    generator and a join, a few microseconds per call that showed in profiles)."""
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnect()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"body: over the limit of {max_bytes} bytes", param="body")
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"body: over the limit of {max_bytes} bytes", param="body")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _request_headers(scope: Scope) -> tuple[str | None, str | None]:
    """(x-request-id, content-length) from the raw headers in one pass; the first of each wins."""
    request_id = length = None
    for name, value in scope["headers"]:
        if name == b"x-request-id" and request_id is None:
            request_id = value.decode("latin-1")
        elif name == b"content-length" and length is None:
            length = value.decode("latin-1")
    return request_id, length


def validate(endpoint_type: str, body: dict[str, Any]) -> None:
    try:
        SCHEMAS[endpoint_type].validate_python(body)
    except pydantic.ValidationError as exc:
        raise invalid_request_from(exc) from None


async def handle(
    request: Request,
    route: str,
    *,
    endpoint_type: str | None = None,
    endpoint_name: str | None = None,
    refuse_model: str | None = None,
) -> ProxyResponse:
    """Read, resolve, validate, call the provider and answer; every outcome is recorded exactly once.

    Args:
        endpoint_type: the type the route serves (OpenAI routes); None accepts the endpoint's own.
        endpoint_name: the endpoint named in the URL (MLflow routes); None reads the body's `model`.
        refuse_model: when set, a `model` field in the body is refused with this message (MLflow).
    """
    scope = request.scope
    state = request.app.state
    router = state.router  # this call keeps the router it started with, whatever a reload swaps in
    request_id, length = _request_headers(scope)
    client = scope.get("client")
    recorder = CallRecorder(
        state.writer,
        route=route,
        client=client[0] if client else None,
        client_request_id=request_id,
        start=scope.get("gateway.start") or time.perf_counter(),
        key_name=scope.get("gateway.key_name"),
    )
    try:
        if endpoint_name is not None:
            recorder.requested = endpoint_name
            endpoint = router.get(endpoint_name, endpoint_type)
            recorder.bind(endpoint.config)
        body, raw = await read_json(request.receive, length, state.max_body_bytes)
        check_request(scope, body, router.config.gateway, raw=raw)  # before anything keeps or parses it
        recorder.request_body = body
        recorder.stream = body.get("stream") is True
        if endpoint_name is None:
            name = body.get("model")
            if not isinstance(name, str) or not name:
                raise InvalidRequest("model: field required (the name of a gateway endpoint)", param="model")
            recorder.requested = name
            endpoint = router.get(name, endpoint_type)
            recorder.bind(endpoint.config)
        elif refuse_model is not None and "model" in body:
            raise InvalidRequest(refuse_model, param="model")
        await authorize(scope, endpoint, state.limit_store, router.config.limits.key_prefix)
        validate(endpoint.config.endpoint_type, body)
        endpoint_type = endpoint.config.endpoint_type
        if recorder.stream:
            opened = await routing.call(
                router, endpoint, functools.partial(_open_stream, endpoint_type, body), recorder.attempts
            )
            recorder.served_by(opened.endpoint, opened.target.model)
            recorder.first_token()
            chunks, first = opened.value
            wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return SSEResponse(
                _relay(first, chunks, recorder, wants_usage, opened.endpoint),
                headers=[*SSE_HEADERS, *_served_headers(opened, recorder)],
            )
        outcome = await routing.call(
            router, endpoint, lambda provider, _: provider.invoke(endpoint_type, body), recorder.attempts
        )
        recorder.served_by(outcome.endpoint, outcome.target.model)
        await outcome.endpoint.spend(outcome.value.data.get("usage"))
    except GatewayError as exc:
        recorder.finish(client_status(exc, mlflow=refuse_model is not None), error=exc)
        exc.headers.update(recorder.timing_headers())
        raise
    except BaseException as exc:
        gone = isinstance(exc, asyncio.CancelledError | ClientDisconnect)  # the client left before the answer
        recorder.finish(499 if gone else 500, error=exc)
        raise
    result = outcome.value
    recorder.finish(200, response=result.data)
    content = result.raw if result.raw is not None else orjson.dumps(result.data)
    return BytesResponse(
        content,
        headers=_served_headers(outcome, recorder),
    )


def _served_headers(outcome: routing.Outcome[Any], recorder: CallRecorder) -> RawHeaders:
    headers = [(b"x-gateway-endpoint", outcome.endpoint.name.encode("latin-1")), *recorder.raw_timing_headers()]
    if recorder.attempts.count > 1:
        headers.append((b"x-gateway-attempts", b"%d" % recorder.attempts.count))
    return headers


async def _open_stream(
    endpoint_type: str, body: dict[str, Any], provider: Provider, endpoint: Endpoint
) -> tuple[AsyncIterator[list[StreamChunk]], list[StreamChunk]]:
    """Start the stream and pull its first batch, so failures before any byte can be retried or
    answered with a real status code."""
    batches = stream_batches(provider, endpoint_type, body, StreamState())
    try:
        async with asyncio.timeout(endpoint.config.timeout.total):
            first = await batches.__anext__()
    except StopAsyncIteration:
        first = []
    except TimeoutError:
        raise UpstreamTimeout(
            f"endpoint {endpoint.name!r}: no first chunk within the timeout", code="upstream_timeout"
        ) from None
    return batches, first


async def _relay(
    first: list[StreamChunk],
    batches: AsyncIterator[list[StreamChunk]],
    recorder: CallRecorder,
    wants_usage: bool,
    served: Endpoint,
) -> AsyncIterator[bytes]:
    """Write each upstream read's chunks to the client in one piece; finish the record however it ends."""
    assembled = StreamAssembler()
    status, error = 200, None
    try:
        batch = first
        iterator = batches.__aiter__()
        while batch:
            out = b"".join([_encode(chunk, wants_usage, assembled) for chunk in batch])
            if out:
                clock = time.perf_counter()
                yield out
                recorder.client_wait_s += time.perf_counter() - clock  # suspended at `yield`: the client is reading
            clock = time.perf_counter()
            try:
                batch = await iterator.__anext__()
            except StopAsyncIteration:
                break
            finally:
                recorder.upstream_stream_s += time.perf_counter() - clock
        await served.spend(assembled.usage)
        yield DONE
    except GatewayError as exc:
        status, error = exc.status_code, exc
        yield encode_sse_error(exc.to_dict())
    except (asyncio.CancelledError, GeneratorExit) as exc:
        status, error = 499, exc  # the client went away; closing the stream cancels the upstream request
        raise
    except Exception as exc:
        logger.exception("stream failed")
        status, error = 500, exc
        yield encode_sse_error(
            {"error": {"message": "internal error", "type": "server_error", "param": None, "code": None}}
        )
    finally:
        await batches.aclose()  # type: ignore[attr-defined]
        recorder.finish(
            status,
            response=assembled.response(),
            error=error,
            usage=assembled.usage,
            finish_reason=assembled.finish_reason,
        )


def _encode(chunk: StreamChunk, wants_usage: bool, assembled: StreamAssembler) -> bytes:
    assembled.add(chunk.data)
    # We ask upstreams for a usage-only chunk (empty choices); clients that did not ask don't get it.
    if not wants_usage and not chunk.data.get("choices") and chunk.data.get("usage"):
        return b""
    return chunk.raw if chunk.raw is not None else encode_sse(chunk.data)
