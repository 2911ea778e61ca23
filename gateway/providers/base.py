"""Provider protocol and HTTPProvider, the shared I/O under every JSON-over-HTTP adapter.

Subclasses only translate (pure functions of data); this module owns every network call, so
timeouts, error mapping and stream handling are written once.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import orjson
from pydantic import BaseModel

from gateway.config import EndpointConfig
from gateway.errors import (
    EndpointNotFound,
    GatewayError,
    InvalidRequest,
    RateLimited,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnavailable,
    clean_message,
    map_upstream_errors,
)
from gateway.streaming import SSEDecoder, SSEEvent
from gateway.upstream import UpstreamClient, UpstreamResponse

CHAT, COMPLETIONS, EMBEDDINGS = "llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings"


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    url: str
    json: dict[str, Any]
    headers: Mapping[str, str]  # holds the key: never logged or recorded


@dataclass(slots=True)
class ProviderResponse:
    data: dict[str, Any]  # OpenAI wire shape
    raw: bytes | None = None  # the upstream body, when it is already what the client gets


@dataclass(slots=True)
class StreamChunk:
    data: dict[str, Any]  # one OpenAI chunk
    raw: bytes | None = None  # SSE bytes to forward unchanged, when the upstream already speaks OpenAI


@dataclass(slots=True)
class StreamState:
    """Per request: what a translator carries across chunks."""

    id: str = ""
    model: str = ""
    created: int = field(default_factory=lambda: int(time.time()))
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    """One upstream model behind one endpoint; built at config load, shared by requests."""

    name: ClassVar[str]
    endpoint_types: ClassVar[frozenset[str]]

    async def invoke(self, endpoint_type: str, body: dict[str, Any]) -> ProviderResponse: ...

    def stream(self, endpoint_type: str, body: dict[str, Any], state: StreamState) -> AsyncIterator[StreamChunk]: ...

    async def aclose(self) -> None: ...


def error_message(body: bytes) -> tuple[str, str | None, str | None]:
    """(message, param, code) from the usual provider error bodies, or the body's start."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode("utf-8", "replace").strip() or "(empty body)", None, None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or data.get("message") or data.get("detail")
            code = err.get("code") if isinstance(err.get("code"), str) else err.get("type")
            param = err.get("param") if isinstance(err.get("param"), str) else None
            if msg:
                return str(msg), param, code
        elif isinstance(err, str):
            return err, None, None
    return orjson.dumps(data)[:300].decode(), None, None


class HTTPProvider:
    """JSON-over-HTTP upstreams: subclasses translate, this class owns every network call."""

    name: ClassVar[str]
    endpoint_types: ClassVar[frozenset[str]]
    config_model: ClassVar[type[BaseModel]]
    secret_fields: ClassVar[frozenset[str]] = frozenset()
    requires_model_name: ClassVar[bool] = True
    # The upstream already answers in OpenAI's shape, so bodies and SSE events can be forwarded as they are.
    passthrough: ClassVar[bool] = False

    def __init__(self, endpoint: EndpointConfig, config: BaseModel, client: UpstreamClient) -> None:
        self.endpoint = endpoint
        self.config = config
        self.client = client
        self.model = endpoint.model.name or ""
        self.connect_timeout = endpoint.timeout.connect
        self.total_timeout = endpoint.timeout.total
        self.idle_timeout = endpoint.timeout.idle
        self.secrets: tuple[str, ...] = tuple(
            v.get_secret_value() for k in self.secret_fields if (v := getattr(config, k, None)) is not None
        )
        self._requesters: dict[str, Callable[[dict[str, Any], bool], UpstreamRequest]] = {
            CHAT: self.chat_request,
            COMPLETIONS: self.completions_request,
            EMBEDDINGS: self.embeddings_request,
        }
        self._responders: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            CHAT: self.chat_response,
            COMPLETIONS: self.completions_response,
            EMBEDDINGS: self.embeddings_response,
        }
        self._chunkers: dict[str, Callable[[SSEEvent, StreamState], list[dict[str, Any]]]] = {
            CHAT: self.chat_chunk,
            COMPLETIONS: self.completions_chunk,
        }

    # ---- translation: pure, overridden per provider -------------------------------------------

    def chat_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        raise EndpointNotFound(f"provider {self.name!r} does not serve llm/v1/chat")

    def chat_response(self, data: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def chat_chunk(self, event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
        raise NotImplementedError

    def completions_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        raise EndpointNotFound(f"provider {self.name!r} does not serve llm/v1/completions")

    def completions_response(self, data: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def completions_chunk(self, event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
        raise NotImplementedError

    def embeddings_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        raise EndpointNotFound(f"provider {self.name!r} does not serve llm/v1/embeddings")

    def embeddings_response(self, data: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def error(self, status_code: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """Map an upstream error answer onto our tree: 4xx passes through, anything else is 502."""
        message, param, code = error_message(body)
        message = clean_message(message, self.secrets)
        if status_code == 429:
            retry = headers.get("retry-after")
            return RateLimitedUpstream(
                f"upstream {self.name} rate limited the request: {message}",
                code=code,
                headers={"Retry-After": retry} if retry else None,
            )
        if 400 <= status_code < 500:
            return UpstreamStatusError(
                f"upstream {self.name} refused the request: {message}",
                param=param,
                code=code,
                status_code=status_code,
            )
        return UpstreamUnavailable(
            f"upstream {self.name} answered {status_code}: {message}", code="upstream_status_" + str(status_code)
        )

    def unsupported(self, body: dict[str, Any], params: tuple[str, ...]) -> None:
        for p in params:
            if body.get(p) is not None:
                raise InvalidRequest(f"{p}: not supported by provider {self.name!r}", param=p)

    # ---- I/O: shared, never overridden --------------------------------------------------------

    async def _send(self, up: UpstreamRequest, *, stream: bool) -> UpstreamResponse:
        body = orjson.dumps(up.json)
        return await self.client.send(
            up.url,
            body,
            await self._sign(up, body),
            connect_timeout=self.connect_timeout,
            # A stream is bounded by the gap between chunks; any other call by its total time.
            read_timeout=self.idle_timeout if stream else None,
            total_timeout=None if stream else self.total_timeout,
            stream=stream,
        )

    async def _sign(self, up: UpstreamRequest, body: bytes) -> Mapping[str, str]:
        """The headers to send with `body`; a provider that signs each request (Bedrock) overrides this."""
        return up.headers

    def _decode(self, content: bytes) -> dict[str, Any]:
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError:
            raise UpstreamUnavailable(
                f"upstream {self.name} answered a body that is not JSON", code="upstream_bad_body"
            ) from None
        if not isinstance(data, dict):
            raise UpstreamUnavailable(f"upstream {self.name} answered JSON that is not an object")
        return data

    def _translate(self, fn: Callable[[Any], dict[str, Any]], data: Any) -> dict[str, Any]:
        try:
            return fn(data)
        except GatewayError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise UpstreamUnavailable(
                f"upstream {self.name} answered a malformed body ({type(exc).__name__}: {exc})",
                code="upstream_bad_body",
            ) from exc

    async def invoke(self, endpoint_type: str, body: dict[str, Any]) -> ProviderResponse:
        up = self._requesters[endpoint_type](body, False)
        with map_upstream_errors(self.name):
            response = await self._send(up, stream=False)
            content = await response.read()
        if response.status_code >= 400:
            raise self.error(response.status_code, content, response.headers)
        data = self._decode(content)
        translated = self._translate(self._responders[endpoint_type], data)  # also checks the shape
        return ProviderResponse(translated, content if self.passthrough else None)

    async def stream(self, endpoint_type: str, body: dict[str, Any], state: StreamState) -> AsyncIterator[StreamChunk]:
        """The Provider protocol's stream: one chunk at a time."""
        async for batch in self.stream_batches(endpoint_type, body, state):
            for chunk in batch:
                yield chunk

    async def stream_batches(
        self, endpoint_type: str, body: dict[str, Any], state: StreamState
    ) -> AsyncIterator[list[StreamChunk]]:
        """The chunks of each upstream read together, so the relay writes them to the client at once."""
        if endpoint_type not in self._chunkers:
            raise InvalidRequest(f"stream: {endpoint_type} endpoints do not stream", param="stream")
        up = self._requesters[endpoint_type](body, True)
        translate = self._chunkers[endpoint_type]
        with map_upstream_errors(self.name):
            response = await self._send(up, stream=True)
        try:
            if response.status_code >= 400:
                with map_upstream_errors(self.name):
                    content = await response.read()
                raise self.error(response.status_code, content, response.headers)
            with map_upstream_errors(self.name):
                async for events in self._read_events(response):
                    for batch in self._translate_batch(translate, events, state):
                        yield batch
            if state.finish_reason is None:
                # The body ended cleanly but the answer never said it was finished: cut short upstream.
                # Relaying it as complete would hand the client half an answer that looks whole.
                raise UpstreamUnavailable(
                    f"upstream {self.name} ended the stream before the answer finished", code="upstream_truncated"
                )
        finally:
            await response.aclose()

    async def _read_events(self, response: UpstreamResponse) -> AsyncIterator[list[SSEEvent]]:
        """The events of each upstream read: server-sent events here; a provider with another
        framing (Bedrock's binary event stream) overrides this and keeps the rest of the stream."""
        ctype = response.headers.get("content-type", "")
        if "text/event-stream" not in ctype:
            raise UpstreamUnavailable(
                f"upstream {self.name} answered {ctype or 'no content type'} instead of an event stream",
                code="upstream_bad_body",
            )
        decoder = SSEDecoder()
        # The socket read timeout only sees bytes; an upstream trickling bytes that never make
        # an event would hold the stream forever, so the idle timeout is checked per event too.
        idle_until = time.monotonic() + self.idle_timeout
        async for raw in response.iter_bytes():
            events = decoder.feed(raw)
            if events:
                idle_until = time.monotonic() + self.idle_timeout
            elif time.monotonic() > idle_until:
                raise UpstreamTimeout(
                    f"upstream {self.name} sent no stream event for {self.idle_timeout:g} s",
                    code="stream_idle_timeout",
                )
            yield events
        yield decoder.close()

    def _translate_batch(
        self,
        translate: Callable[[SSEEvent, StreamState], list[dict[str, Any]]],
        events: list[SSEEvent],
        state: StreamState,
    ) -> Iterator[list[StreamChunk]]:
        """One batch for the events of one read; if an event fails, what came before it goes out first."""
        batch: list[StreamChunk] = []
        try:
            for event in events:
                batch.extend(self._translate_chunk(translate, event, state))
        except GatewayError:
            if batch:
                yield batch
            raise
        if batch:
            yield batch

    def _translate_chunk(
        self, translate: Callable[[SSEEvent, StreamState], list[dict[str, Any]]], event: SSEEvent, state: StreamState
    ) -> list[StreamChunk]:
        try:
            chunks = translate(event, state)
        except GatewayError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, orjson.JSONDecodeError) as exc:
            raise UpstreamUnavailable(
                f"upstream {self.name} sent a malformed stream event ({type(exc).__name__})", code="upstream_bad_body"
            ) from exc
        if self.passthrough and len(chunks) == 1:
            return [StreamChunk(chunks[0], b"data: " + event.data.encode() + b"\n\n")]
        return [StreamChunk(c) for c in chunks]

    async def aclose(self) -> None:
        return None


def stream_batches(
    provider: Provider, endpoint_type: str, body: dict[str, Any], state: StreamState
) -> AsyncIterator[list[StreamChunk]]:
    """A provider's stream as batches: HTTPProvider's own, or one chunk per batch for a provider
    that streams some other way (its own `stream`, e.g. a `provider: python` class)."""
    if isinstance(provider, HTTPProvider) and type(provider).stream is HTTPProvider.stream:
        return provider.stream_batches(endpoint_type, body, state)
    return _one_by_one(provider.stream(endpoint_type, body, state))


async def _one_by_one(chunks: AsyncIterator[StreamChunk]) -> AsyncIterator[list[StreamChunk]]:
    try:
        async for chunk in chunks:
            yield [chunk]
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


class RateLimitedUpstream(RateLimited, UpstreamError):
    """The upstream answered 429: passed on as 429 with its Retry-After."""

    status_code = 429
    error_type = "rate_limit_error"


def stream_event_json(event: SSEEvent) -> dict[str, Any] | None:
    """The event's JSON object, or None for OpenAI's [DONE] sentinel."""
    if event.data == "[DONE]":
        return None
    data = orjson.loads(event.data)
    if not isinstance(data, dict):
        raise ValueError("stream event is not a JSON object")
    return data
