"""A small OpenAI-shaped upstream on 127.0.0.1 for tests that start the real gateway.

It answers with the model it was asked for, so a test can tell which config served a call;
streams are 10 chunks 30 ms apart, long enough to span a config swap.
"""

from __future__ import annotations

import asyncio
import threading
import time

import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.integration.e2e.conftest import free_port


async def chat(request: Request) -> Response:
    body = orjson.loads(await request.body())
    model = body["model"]
    if not body.get("stream"):
        await asyncio.sleep(0.005)
        message = {"role": "assistant", "content": model}
        return Response(
            orjson.dumps({"id": "c", "object": "chat.completion", "created": 1, "model": model,
                          "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
            media_type="application/json",
        )  # fmt: skip

    async def events():
        for i in range(10):  # a stream that spans the reload: about 0.3 s
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model,
                     "choices": [{"index": 0, "delta": {"content": f"{model}{i} "}, "finish_reason": None}]}  # fmt: skip
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
            await asyncio.sleep(0.03)
        done = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 10, "total_tokens": 11}}  # fmt: skip
        yield b"data: " + orjson.dumps(done) + b"\n\n"
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@pytest.fixture(scope="module")
def upstream():
    """The base URL (…/v1) of a running upstream."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])]),
                                           host="127.0.0.1", port=port, log_level="warning", lifespan="off"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(5)
