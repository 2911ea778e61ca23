"""CallRecorder: one per proxied call; turns what happened into one TraceRecord and one metric sample."""

from __future__ import annotations

import time
import uuid
from typing import Any

from gateway import metrics
from gateway.errors import GatewayError
from tracking.records import TraceRecord, Usage
from tracking.sink import BatchingWriter


class CallRecorder:
    """`finish` is idempotent and always reached (the proxy calls it in a finally)."""

    __slots__ = (
        "writer", "endpoint", "endpoint_type", "provider", "model", "route", "stream", "request_body",
        "client", "client_request_id", "id", "timestamp", "_start", "_ttft", "_done",
    )  # fmt: skip

    def __init__(
        self,
        writer: BatchingWriter,
        *,
        endpoint: str,
        endpoint_type: str,
        provider: str,
        model: str,
        route: str,
        stream: bool,
        request_body: dict[str, Any] | None,
        client: str | None,
        client_request_id: str | None,
        start: float,
    ) -> None:
        self.writer = writer
        self.endpoint = endpoint
        self.endpoint_type = endpoint_type
        self.provider = provider
        self.model = model
        self.route = route
        self.stream = stream
        self.request_body = request_body
        self.client = client
        self.client_request_id = client_request_id
        self.id = uuid.uuid4().hex
        self.timestamp = time.time()
        self._start = start
        self._ttft: float | None = None
        self._done = False

    def first_token(self) -> None:
        if self._ttft is None:
            self._ttft = (time.perf_counter() - self._start) * 1000

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
        elapsed = time.perf_counter() - self._start
        status_class = metrics.status_class(status)
        metrics.REQUESTS.labels(self.endpoint, self.route, status_class).inc()
        metrics.REQUEST_DURATION.labels(self.endpoint, self.route, status_class).observe(elapsed)
        error_dict = None
        if isinstance(error, GatewayError):
            error_dict = {"type": error.error_type, "message": error.message, "code": error.code}
        elif error is not None:
            error_dict = {"type": type(error).__name__, "message": "internal error" if status >= 500 else str(error)}
        if response is not None and usage is None:
            usage = response.get("usage")
        self.writer.submit(
            TraceRecord(
                id=self.id,
                timestamp=self.timestamp,
                endpoint=self.endpoint,
                endpoint_type=self.endpoint_type,
                provider=self.provider,
                model=self.model,
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
            )
        )


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
