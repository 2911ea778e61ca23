"""A mock upstream speaking OpenAI's and Anthropic's wire formats, served by a real uvicorn in a thread.

It records every request it receives (so tests can assert what the gateway sent) and misbehaves
on demand: a `MOCK:<behaviour>` marker anywhere in the request body picks the behaviour.

    MOCK:error500    500 with an OpenAI error body (echoing the key it received)
    MOCK:error401    401 whose message echoes the key it received (the gateway must clean it)
    MOCK:error429    429 with Retry-After: 7
    MOCK:garbage     200 with an HTML body
    MOCK:malformed   200 with JSON that is not a chat/completions/messages answer
    MOCK:hang        sleeps 5 s before answering (pair with an endpoint `timeout: {total: 1}`)
    MOCK:slowN       streams N chunks (logged by prompt in `streams`), one every 100 ms (default 30)
    MOCK:cut         streams two chunks, then drops the connection
    MOCK:stall       streams one chunk, then goes silent for 5 s
    MOCK:streamerror streams one chunk, then an in-band error event (OpenAI's and Anthropic's shapes)
    MOCK:tool        Anthropic answers with a tool_use block (when the request has tools)
    MOCK:cookie      answers normally, with a Set-Cookie header
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

OPENAI_KEY = "sk-test-SECRET-123"
ANTHROPIC_KEY = "sk-ant-test-SECRET-456"
_MARKER = re.compile(r"MOCK:([a-z0-9]+)")
TOOL_INPUT = {"city": "Paris", "unit": "celsius"}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    text: str


@dataclass
class StreamLog:
    """What happened to one slow stream, keyed by the marker token the test put in its prompt."""

    chunks_sent: int = 0
    started_at: float = 0.0
    last_chunk_at: float = 0.0
    completed: bool = False
    closed_at: float | None = None  # set when the generator stopped without completing (client went away)
    closed: threading.Event = field(default_factory=threading.Event)


class MockUpstream:
    def __init__(self) -> None:
        self.port = 0
        self.requests: list[Received] = []
        self.streams: dict[str, StreamLog] = {}
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.openai_chat, methods=["POST"]),
                Route("/v1/completions", self.openai_completions, methods=["POST"]),
                Route("/v1/embeddings", self.openai_embeddings, methods=["POST"]),
                Route("/v1/messages", self.anthropic_messages, methods=["POST"]),
            ]
        )

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self, port: int) -> None:
        self.port = port
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=port, log_level="warning", loop="asyncio", http="h11", lifespan="off"
        )
        config.timeout_graceful_shutdown = 1
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="mock-upstream", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("mock upstream did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # ---- what tests look at ----------------------------------------------------------------------

    def received(self, token: str) -> list[Received]:
        """The requests whose body contains `token` (each test puts a unique one in its prompt)."""
        with self._lock:
            return [r for r in self.requests if token in r.text]

    def stream_log(self, token: str) -> StreamLog:
        """The slow stream whose prompt (last user message) is `token`."""
        with self._lock:
            return self.streams.setdefault(token, StreamLog())

    # ---- shared helpers --------------------------------------------------------------------------

    async def _record(self, request: Request) -> tuple[dict[str, Any], str | None]:
        raw = await request.body()
        body = orjson.loads(raw)
        text = raw.decode()
        with self._lock:
            self.requests.append(Received(request.url.path, dict(request.headers), body, text))
        match = _MARKER.search(text)
        return body, match.group(1) if match else None

    @staticmethod
    def _last_user_text(messages: list[dict[str, Any]]) -> str:
        for msg in reversed(messages):
            if msg.get("role") == "user":
                content = msg.get("content")
                if isinstance(content, str):
                    return content
                return "".join(p.get("text", "") for p in content if p.get("type") == "text")
        return ""

    async def _misbehave(self, behaviour: str | None, key: str) -> Response | None:
        if behaviour == "error500":
            message = f"The server had an error while processing your request with key {key}"
            return JSONResponse({"error": {"message": message, "type": "server_error"}}, 500)
        if behaviour == "error401":
            # Real providers echo (part of) the key they got; the gateway must not pass it on.
            message = f"Incorrect API key provided: {key}. You can find your API key at the dashboard."
            body = {"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}}
            return JSONResponse(body, 401)
        if behaviour == "error429":
            body = {"error": {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit"}}
            return JSONResponse(body, 429, headers={"Retry-After": "7"})
        if behaviour == "garbage":
            return Response("<html><body>502 Bad Gateway (nginx)</body></html>", 200, media_type="text/html")
        if behaviour == "malformed":
            return JSONResponse({"result": "this is not the shape you are looking for"})
        if behaviour == "hang":
            await asyncio.sleep(5)
            return JSONResponse({"error": {"message": "too late"}}, 500)
        return None

    def _sse(self, events: AsyncIterator[bytes]) -> StreamingResponse:
        return StreamingResponse(events, media_type="text/event-stream")

    async def _slow(self, token: str, count: int, make: Any) -> AsyncIterator[bytes]:
        log = self.stream_log(token)
        log.started_at = time.monotonic()
        try:
            for i in range(count):
                yield make(i)
                log.chunks_sent = i + 1
                log.last_chunk_at = time.monotonic()
                await asyncio.sleep(0.1)
            log.completed = True
        finally:
            if not log.completed:
                log.closed_at = time.monotonic()
            log.closed.set()

    # ---- OpenAI ----------------------------------------------------------------------------------

    def _openai_auth(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {OPENAI_KEY}":
            body = {"error": {"message": "missing or wrong bearer token", "type": "invalid_request_error"}}
            return JSONResponse(body, 401)
        return None

    async def openai_chat(self, request: Request) -> Response:
        body, behaviour = await self._record(request)
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        refused = await self._misbehave(behaviour, key) or self._openai_auth(request)
        if refused is not None:
            return refused
        reply = "Echo: " + self._last_user_text(body["messages"])
        usage = {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}
        if not body.get("stream"):
            answer = JSONResponse(
                {
                    "id": "chatcmpl-mock",
                    "object": "chat.completion",
                    "created": 1700000000,
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
                    ],
                    "usage": usage,
                }
            )
            if behaviour == "cookie":
                answer.set_cookie("upstream_session", "for-one-caller-only", path="/")
            return answer

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            data = {
                "id": "chatcmpl-mock",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return b"data: " + orjson.dumps(data) + b"\n\n"

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return self._sse(self._openai_stream(body, behaviour, reply, usage, include_usage, chunk))

    async def _openai_stream(
        self, body: dict[str, Any], behaviour: str | None, reply: str, usage: dict[str, Any], include_usage: bool, chunk
    ) -> AsyncIterator[bytes]:
        if behaviour and behaviour.startswith("slow"):
            token = self._last_user_text(body["messages"])
            count = int(behaviour[4:] or 30)
            async for piece in self._slow(token, count, lambda i: chunk({"content": f"c{i} "})):
                yield piece
            yield chunk({}, "stop")  # a finished stream says so: without it the gateway reports truncation
            yield b"data: [DONE]\n\n"
            return
        yield chunk({"role": "assistant", "content": ""})
        if behaviour == "cut":
            yield chunk({"content": "partial "})
            await asyncio.sleep(0.05)
            raise ConnectionAbortedError("mock upstream drops the connection mid-stream")
        if behaviour == "streamerror":
            yield chunk({"content": "partial "})
            yield b'data: {"error": {"message": "The model is overloaded", "type": "server_error"}}\n\n'
            return
        if behaviour == "stall":
            yield chunk({"content": "partial "})
            await asyncio.sleep(5)
        for word in _pieces(reply):
            yield chunk({"content": word})
        yield chunk({}, "stop")
        if include_usage:
            data = {
                "id": "chatcmpl-mock",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": body["model"],
                "choices": [],
                "usage": usage,
            }
            yield b"data: " + orjson.dumps(data) + b"\n\n"
        yield b"data: [DONE]\n\n"

    async def openai_completions(self, request: Request) -> Response:
        body, behaviour = await self._record(request)
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        refused = await self._misbehave(behaviour, key) or self._openai_auth(request)
        if refused is not None:
            return refused
        prompt = body["prompt"] if isinstance(body["prompt"], str) else body["prompt"][0]
        reply = "Echo: " + prompt
        usage = {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}
        base = {"id": "cmpl-mock", "object": "text_completion", "created": 1700000000, "model": body["model"]}
        if not body.get("stream"):
            choice = {"index": 0, "text": reply, "finish_reason": "stop", "logprobs": None}
            return JSONResponse({**base, "choices": [choice], "usage": usage})

        async def events() -> AsyncIterator[bytes]:
            for word in _pieces(reply):
                choice = {"index": 0, "text": word, "finish_reason": None, "logprobs": None}
                yield b"data: " + orjson.dumps({**base, "choices": [choice]}) + b"\n\n"
            last = {"index": 0, "text": "", "finish_reason": "stop", "logprobs": None}
            yield b"data: " + orjson.dumps({**base, "choices": [last]}) + b"\n\n"
            if (body.get("stream_options") or {}).get("include_usage"):
                yield b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n"
            yield b"data: [DONE]\n\n"

        return self._sse(events())

    async def openai_embeddings(self, request: Request) -> Response:
        body, behaviour = await self._record(request)
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        refused = await self._misbehave(behaviour, key) or self._openai_auth(request)
        if refused is not None:
            return refused
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(str(text))), float(i), 0.5]}
            for i, text in enumerate(inputs)
        ]
        usage = {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}
        return JSONResponse({"object": "list", "data": data, "model": body["model"], "usage": usage})

    # ---- Anthropic -------------------------------------------------------------------------------

    async def anthropic_messages(self, request: Request) -> Response:
        body, behaviour = await self._record(request)
        key = request.headers.get("x-api-key", "")
        refused = await self._misbehave(behaviour, key)
        if refused is not None:
            return refused
        if key != ANTHROPIC_KEY or not request.headers.get("anthropic-version"):
            body = {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
            return JSONResponse(body, 401)
        last = body["messages"][-1]
        tool_result = next((b for b in last["content"] if isinstance(b, dict) and b.get("type") == "tool_result"), None)
        if tool_result is not None:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": f"The tool said: {tool_result['content']}"}]
            stop = "end_turn"
        elif behaviour == "tool" and body.get("tools"):
            tool = body["tools"][0]["name"]
            blocks = [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_mock_1", "name": tool, "input": TOOL_INPUT},
            ]
            stop = "tool_use"
        else:
            blocks = [{"type": "text", "text": "Echo: " + self._last_user_text(body["messages"])}]
            stop = "end_turn"
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": "msg_mock",
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": blocks,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 11, "output_tokens": 7},
                }
            )
        return self._sse(self._anthropic_stream(body, behaviour, blocks, stop))

    async def _anthropic_stream(
        self, body: dict[str, Any], behaviour: str | None, blocks: list[dict[str, Any]], stop: str
    ) -> AsyncIterator[bytes]:
        def event(kind: str, data: dict[str, Any]) -> bytes:
            return f"event: {kind}\n".encode() + b"data: " + orjson.dumps({"type": kind, **data}) + b"\n\n"

        message = {
            "id": "msg_mock_stream",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 11, "output_tokens": 1},
        }
        yield event("message_start", {"message": message})
        yield event("ping", {})
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                yield event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
                for word in _pieces(block["text"]):
                    yield event("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": word}})
                    if behaviour == "cut":
                        await asyncio.sleep(0.05)
                        raise ConnectionAbortedError("mock upstream drops the connection mid-stream")
                    if behaviour == "streamerror":
                        yield event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
                        return
            else:
                start = {**block, "input": {}}
                yield event("content_block_start", {"index": index, "content_block": start})
                args = orjson.dumps(block["input"]).decode()
                third = len(args) // 3
                for part in (args[:third], args[third : 2 * third], args[2 * third :]):
                    delta = {"type": "input_json_delta", "partial_json": part}
                    yield event("content_block_delta", {"index": index, "delta": delta})
            yield event("content_block_stop", {"index": index})
        yield event(
            "message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 7}}
        )
        yield event("message_stop", {})


def _pieces(text: str) -> Iterator[str]:
    """Split into word-sized pieces that join back to the text."""
    words = text.split(" ")
    for i, word in enumerate(words):
        yield word if i == len(words) - 1 else word + " "
