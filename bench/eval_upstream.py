"""A mock OpenAI upstream for evaluation benchmarks and tests: every answer after a fixed delay.

    python bench/eval_upstream.py --port 9101 --latency 0.05

Answers /v1/chat/completions with the last user message reversed, and /v1/completions likewise.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def build_app(latency: float) -> Starlette:
    async def chat(request: Request) -> Response:
        body = json.loads(await request.body())
        await asyncio.sleep(latency)
        text = str(body["messages"][-1]["content"])[::-1]
        return JSONResponse(
            {
                "id": "chatcmpl-mock",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "mock"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
            }
        )

    async def completions(request: Request) -> Response:
        body = json.loads(await request.body())
        await asyncio.sleep(latency)
        text = str(body["prompt"])[::-1]
        return JSONResponse(
            {
                "id": "cmpl-mock",
                "object": "text_completion",
                "created": 0,
                "model": body.get("model", "mock"),
                "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
            }
        )

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/completions", completions, methods=["POST"]),
        ]
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9101)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds before each answer")
    args = parser.parse_args()
    uvicorn.run(build_app(args.latency), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
