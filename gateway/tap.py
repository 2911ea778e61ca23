"""CallRecorder: one per proxied call; turns what happened into one TraceRecord and one metric sample."""

from __future__ import annotations

import itertools
import logging
import os
import time
from typing import Any

import orjson

from gateway import metrics
from gateway.config import EndpointConfig, ModelConfig
from gateway.errors import GatewayError, UpstreamError, UpstreamStatusError, UpstreamTimeout
from gateway.providers.base import RateLimitedUpstream
from gateway.routing import Attempts
from tracking.records import TraceRecord, Usage
from tracking.sink import BatchingWriter

# JSON access log: off unless the CLI's --access-log json turns this logger on.
ACCESS_LOG = logging.getLogger("gateway.access")

# Record ids: a random per-process prefix and a counter. uuid4 costs a getrandom() syscall per call;
# this is unique across processes and restarts all the same (64 random bits per process).
_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count()


def next_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


class CallRecorder:
    """`finish` is idempotent and always reached (the proxy calls it in a finally).

    Created when a request arrives, before anything is known about it, so calls refused early
    (bad body, unknown endpoint) are recorded and counted too; `bind` fills in the endpoint.
    """

    __slots__ = (
        "writer", "route", "client", "client_request_id", "start", "id", "timestamp", "requested",
        "endpoint", "model", "stream", "request_body", "fallback", "key_name", "_ttft", "_done",
        "attempts", "upstream_stream_s", "client_wait_s", "overhead_s",
    )  # fmt: skip

    def __init__(
        self,
        writer: BatchingWriter,
        *,
        route: str,
        client: str | None,
        client_request_id: str | None,
        start: float,
        key_name: str | None = None,
    ) -> None:
        self.writer = writer
        self.route = route
        self.client = client
        self.client_request_id = client_request_id
        self.key_name = key_name  # the gateway key's configured name, never the key
        self.start = start
        self.id = next_id()
        self.timestamp = time.time()
        self.requested = ""  # the endpoint name the client asked for, before it is known to exist
        self.endpoint: EndpointConfig | None = None
        self.model: ModelConfig | None = None  # the model that answered, when the endpoint has several
        self.stream = False
        self.request_body: dict[str, Any] | None = None
        self.fallback: str | None = None
        self._ttft: float | None = None
        self._done = False
        self.attempts = Attempts()  # upstream calls and time waiting on them, filled in by routing.call
        self.upstream_stream_s = 0.0  # waiting on the upstream for stream chunks after the first
        self.client_wait_s = 0.0  # waiting for a slow client to take stream chunks
        self.overhead_s = 0.0
        metrics.in_flight(route).inc()

    def bind(self, endpoint: EndpointConfig) -> None:
        self.endpoint = endpoint

    @property
    def upstream_s(self) -> float:
        return self.attempts.upstream_seconds + self.upstream_stream_s

    @property
    def served_model(self) -> ModelConfig | None:
        """The model that answered, else the endpoint's (first) model, else None (endpoint unknown)."""
        if self.model is not None:
            return self.model
        return self.endpoint.model if self.endpoint is not None else None

    def served_by(self, endpoint: Any, model: ModelConfig) -> None:
        """Which endpoint answered (a fallback, or a traffic-split destination), with which of its models."""
        self.model = model
        if self.endpoint is not None and endpoint.name != self.endpoint.name:
            self.fallback = endpoint.name

    def first_token(self) -> None:
        if self._ttft is None:
            self._ttft = (time.perf_counter() - self.start) * 1000

    def finish(
        self,
        status: int,
        *,
        response: dict[str, Any] | None = None,
        error: GatewayError | BaseException | None = None,
        usage: dict[str, Any] | None = None,
        finish_reason: str | None = None,
    ) -> None:
        if self._done:
            return
        self._done = True
        elapsed = time.perf_counter() - self.start
        self.overhead_s = max(0.0, elapsed - self.upstream_s - self.client_wait_s)
        if response is not None and usage is None:
            usage = response.get("usage")
        self._observe(status, elapsed, error, usage, response)
        ep = self.endpoint
        model = self.served_model
        if ACCESS_LOG.isEnabledFor(logging.INFO):
            self._access_log(status, elapsed, usage, error)
        error_dict = None
        if isinstance(error, GatewayError):
            error_dict = {"type": error.error_type, "message": error.message, "code": error.code}
        elif error is not None:
            error_dict = {"type": type(error).__name__, "message": "internal error" if status >= 500 else str(error)}
        self.writer.submit(
            TraceRecord(
                id=self.id,
                timestamp=self.timestamp,
                endpoint=ep.name if ep is not None else self.requested[:200],
                endpoint_type=ep.endpoint_type if ep is not None else "",
                provider=model.provider if model is not None else "",
                model=(model.name or "") if model is not None else "",
                route=self.route,
                stream=self.stream,
                status=status,
                client_request_id=self.client_request_id,
                request=self.request_body,
                response=response,
                error=error_dict,
                usage=Usage.from_openai(usage),
                latency_ms=elapsed * 1000,
                ttft_ms=self._ttft,
                response_model=response.get("model") if response else None,
                upstream_id=response.get("id") if response else None,
                client=self.client,
                finish_reason=finish_reason,
                retries=max(0, self.attempts.count - 1),
                fallback=self.fallback,
                key_name=self.key_name,
            )
        )

    def _observe(
        self,
        status: int,
        elapsed: float,
        error: BaseException | None,
        usage: dict[str, Any] | None,
        response: dict[str, Any] | None,
    ) -> None:
        ep = self.endpoint
        model = self.served_model
        # Metric labels only ever carry configured names, never what a client made up.
        label = ep.name if ep is not None else "(unknown)"
        route = self.route
        requests, duration = metrics.call_series(label, route, metrics.status_class(status))
        requests.inc()
        duration.observe(elapsed)
        metrics.in_flight(route).dec()
        metrics.histogram(metrics.OVERHEAD, label, route).observe(self.overhead_s)
        if ep is None:
            return
        if self.upstream_s:
            metrics.histogram(metrics.UPSTREAM_DURATION, label, model.provider).observe(self.upstream_s)
        if self.attempts.count > 1:
            metrics.counter(metrics.RETRIES, label).inc(self.attempts.count - 1)
        if self.fallback:
            metrics.counter(metrics.FALLBACKS, label, self.fallback).inc()
        if error is not None:
            kind = _error_kind(error)
            if kind is not None:
                metrics.counter(metrics.UPSTREAM_ERRORS, label, kind).inc()
            if status == 429:
                metrics.counter(metrics.RATE_LIMITED, label, "upstream" if kind == "rate_limited" else "gateway").inc()
            return
        if status != 200:
            return
        genai = (
            metrics.OPERATION.get(ep.endpoint_type, ep.endpoint_type),
            model.provider,
            model.name or "",
            str((response or {}).get("model") or ""),
            label,
        )
        metrics.histogram(metrics.GENAI_DURATION, *genai).observe(elapsed)
        if usage:
            prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
            if isinstance(prompt, int):
                metrics.histogram(metrics.TOKEN_USAGE, *genai, "input").observe(prompt)
            if isinstance(completion, int):
                metrics.histogram(metrics.TOKEN_USAGE, *genai, "output").observe(completion)
        if self.stream and self._ttft is not None:
            ttft = self._ttft / 1000
            metrics.histogram(metrics.TTFT, *genai).observe(ttft)
            completion = (usage or {}).get("completion_tokens")
            if isinstance(completion, int) and completion > 1:
                metrics.histogram(metrics.TPOT, *genai).observe((elapsed - ttft) / (completion - 1))

    def _access_log(
        self, status: int, elapsed: float, usage: dict[str, Any] | None, error: BaseException | None
    ) -> None:
        """One JSON line per call: what happened and how long it took; never content or keys."""
        ep = self.endpoint
        model = self.served_model
        line = {
            "ts": round(self.timestamp, 3),
            "id": self.id,
            "request_id": self.client_request_id,
            "client": self.client,
            "route": self.route,
            "endpoint": ep.name if ep is not None else None,
            "provider": model.provider if model is not None else None,
            "model": model.name if model is not None else None,
            "stream": self.stream,
            "status": status,
            "latency_ms": round(elapsed * 1000, 3),
            "overhead_ms": round(self.overhead_s * 1000, 3),
            "upstream_ms": round(self.upstream_s * 1000, 3),
            "ttft_ms": None if self._ttft is None else round(self._ttft, 3),
            "attempts": self.attempts.count,
            "fallback": self.fallback,
            "key_name": self.key_name,
            "prompt_tokens": (usage or {}).get("prompt_tokens"),
            "completion_tokens": (usage or {}).get("completion_tokens"),
            "error": error.error_type if isinstance(error, GatewayError) else (type(error).__name__ if error else None),
        }
        ACCESS_LOG.info(orjson.dumps(line).decode())

    def timing_headers(self) -> dict[str, str]:
        """x-request-id, Server-Timing and x-gateway-overhead-ms for the response (so far, for streams)."""
        return {name.decode(): value.decode("latin-1") for name, value in self.raw_timing_headers()}

    def raw_timing_headers(self) -> list[tuple[bytes, bytes]]:
        """The same as ASGI header pairs, for the proxy routes' responses (built on every call)."""
        elapsed = time.perf_counter() - self.start
        upstream = self.upstream_s
        overhead = b"%.3f" % (max(0.0, elapsed - upstream - self.client_wait_s) * 1000)
        return [
            (b"x-request-id", (self.client_request_id or self.id).encode("latin-1")),
            (b"server-timing", b"gateway;dur=%s, upstream;dur=%.3f" % (overhead, upstream * 1000)),
            (b"x-gateway-overhead-ms", overhead),
        ]


def _error_kind(error: BaseException) -> str | None:
    if isinstance(error, RateLimitedUpstream):
        return "rate_limited"
    if isinstance(error, UpstreamTimeout):
        return "timeout"
    if isinstance(error, UpstreamStatusError):
        return "status_4xx"
    if isinstance(error, UpstreamError):
        return "bad_body" if error.code == "upstream_bad_body" else "unavailable"
    return None


class StreamAssembler:
    """Builds the final message of a stream from its chunks, for the record."""

    __slots__ = ("text", "tool_calls", "finish_reason", "usage", "id", "model", "object")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.id: str | None = None
        self.model: str | None = None
        self.object = "chat.completion"

    def add(self, chunk: dict[str, Any]) -> None:
        if self.id is None:
            self.id = chunk.get("id")
            self.model = chunk.get("model")
            if chunk.get("object") == "text_completion":
                self.object = "text_completion"
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
            if "text" in choice:
                self.text.append(choice["text"] or "")
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.text.append(delta["content"])
            for call in delta.get("tool_calls") or ():
                slot = self.tool_calls.setdefault(
                    call.get("index", 0), {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
                )
                if call.get("id"):
                    slot["id"] = call["id"]
                fn = call.get("function") or {}
                slot["function"]["name"] += fn.get("name") or ""
                slot["function"]["arguments"] += fn.get("arguments") or ""

    def response(self) -> dict[str, Any]:
        text = "".join(self.text)
        if self.object == "text_completion":
            choice: dict[str, Any] = {"index": 0, "text": text, "finish_reason": self.finish_reason}
        else:
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if self.tool_calls:
                message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
            choice = {"index": 0, "message": message, "finish_reason": self.finish_reason}
        return {"id": self.id, "object": self.object, "model": self.model, "choices": [choice], "usage": self.usage}
