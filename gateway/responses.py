"""Responses for the proxy routes, sent as raw ASGI messages, plus an orjson JSONResponse for the rest.

Starlette's Response rebuilds and re-encodes its header list on every call, and its
StreamingResponse (on uvicorn, which speaks ASGI 2.3) runs each stream inside an anyio task group
to notice a disconnect. Both showed up in profiles of the hot path; these do the same job with
prebuilt header lists and one watcher task per stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

RawHeaders = list[tuple[bytes, bytes]]


class ORJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class BytesResponse:
    """A whole body already in bytes (usually the upstream's own), with its headers."""

    __slots__ = ("status_code", "body", "raw_headers")

    def __init__(
        self,
        body: bytes,
        *,
        status_code: int = 200,
        media_type: str = "application/json",
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.raw_headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", media_type.encode("latin-1")),
            *headers,
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})


class SSEResponse:
    """A server-sent event stream; a client that disconnects cancels it, which closes `chunks`
    (and with it the upstream request) at whatever await it was waiting on."""

    __slots__ = ("chunks", "raw_headers", "status_code")

    def __init__(self, chunks: AsyncIterator[bytes], *, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        self.chunks = chunks
        self.status_code = 200
        self.raw_headers = [(b"content-type", b"text/event-stream; charset=utf-8"), *headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        ending = False
        disconnected = False
        watcher: asyncio.Future[Any]

        def watch() -> None:
            nonlocal watcher
            watcher = asyncio.ensure_future(receive())
            watcher.add_done_callback(on_message)

        def on_message(done: asyncio.Future[Any]) -> None:
            nonlocal disconnected
            if ending or done.cancelled() or done.exception() is not None:
                return
            if done.result().get("type") != "http.disconnect":
                watch()  # the body was read in full already; anything else is not ours to act on
                return
            disconnected = True
            task.cancel()

        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        watch()
        try:
            async for chunk in self.chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            ending = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not disconnected:
                raise
            task.uncancel()  # our own cancellation, done with: the caller sees a stream that ended
        except OSError:
            pass  # ASGI 2.4 servers raise this from send() once the client has gone
        finally:
            ending = True
            watcher.cancel()
            await self.chunks.aclose()  # type: ignore[attr-defined]


ProxyResponse = BytesResponse | SSEResponse
