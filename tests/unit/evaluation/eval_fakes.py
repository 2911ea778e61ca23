"""A small in-process gateway: OpenAI-shaped answers, scripted failures, and a record of requests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

GATEWAY_URL = "http://gateway.test"


@dataclass
class Reply:
    """What the fake answers: a text, or an error status with OpenAI's error body."""

    text: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer (for per-row timeouts)


Script = Callable[[dict[str, Any]], Reply | Awaitable[Reply]]


def echo(body: dict[str, Any]) -> Reply:
    """Answers with the last user message, upper-cased; completions answer the prompt reversed."""
    if "prompt" in body:
        return Reply(str(body["prompt"])[::-1])
    return Reply(str(body["messages"][-1]["content"]).upper())


def chat_body(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class FakeGateway:
    def __init__(self, script: Script = echo, endpoint_types: dict[str, str] | None = None) -> None:
        self.script = script
        self.endpoint_types = endpoint_types or {}
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/completions", self._completions, methods=["POST"]),
                Route("/api/2.0/endpoints/{name}", self._endpoint, methods=["GET"]),
            ]
        )

    async def _answer(self, request: Request, completions: bool) -> JSONResponse:
        body = json.loads(await request.body())
        self.requests.append(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            for _ in range(3):
                await asyncio.sleep(0)  # let other rows in, so concurrency is observable
            reply = self.script(body)
            if not isinstance(reply, Reply):
                reply = await reply
            if reply.hang:
                await asyncio.Event().wait()
        finally:
            self.in_flight -= 1
        if reply.status >= 400:
            error = {"message": reply.text or "failed", "type": "upstream_error", "param": None, "code": None}
            return JSONResponse({"error": error}, status_code=reply.status, headers=reply.headers)
        if completions:
            data = {"id": "cmpl-test", "object": "text_completion", "choices": [{"index": 0, "text": reply.text}]}
            return JSONResponse(data)
        return JSONResponse(chat_body(reply.text))

    async def _chat(self, request: Request) -> JSONResponse:
        return await self._answer(request, completions=False)

    async def _completions(self, request: Request) -> JSONResponse:
        return await self._answer(request, completions=True)

    async def _endpoint(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        kind = self.endpoint_types.get(name, "llm/v1/chat")
        return JSONResponse({"name": name, "endpoint_type": kind, "model": {"name": "fake", "provider": "openai"}})
