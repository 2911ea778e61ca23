"""A misbehaving upstream at the socket level: raw asyncio TCP in a thread, so it can do what no framework lets it.

The first path segment picks the behaviour, so one gateway config can point one endpoint at each:
`openai_api_base: http://127.0.0.1:PORT/<behaviour>/v1`.

    ok            a normal chat completion, a stream when the body asks for one, or embeddings by path
    slow          a stream of 40 chunks, one every 100 ms (chunked encoding), logged per marker
    reset         non-stream: headers, part of the body, then a TCP reset
    resetstream   stream: two events, then a TCP reset
    cutclean      stream: two events, then a clean end of the chunked body: no finish, no [DONE]
    hang          reads the request and never answers
    trickle       stream: headers, then one byte every 150 ms that never completes an event
    tricklemid    stream: one whole event, then the same trickle
    badjson       200 application/json with a body that is not JSON
    html          200 text/html (also for stream requests: the wrong content type)
    huge          200 application/json without a length, streaming junk until the peer goes away
    hugestream    an endless SSE stream of 8 KiB events
    error500      500 with an OpenAI error body

Every connection is logged (`Conn`): when it ended and whether the peer (the gateway) closed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

_MARKER = re.compile(rb"tok[0-9a-f]{10}")


@dataclass
class Conn:
    behaviour: str
    marker: str | None
    body: dict[str, Any]
    path: str = ""
    chunks_sent: int = 0
    bytes_sent: int = 0
    peer_closed: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    peer_closed_at: float | None = None


def _completion(model: str, text: str) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-fault",
            "object": "chat.completion",
            "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
    )


def _chunk(model: str, content: str | None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    data = {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(data) + b"\n\n"


class FaultUpstream:
    def __init__(self) -> None:
        self.port = 0
        self.conns: list[Conn] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    # ---- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fault-upstream", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("fault upstream did not start")

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()
        self._loop.close()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()  # type: ignore[union-attr]

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        self._thread.join(timeout=10)

    def base(self, behaviour: str) -> str:
        return f"http://127.0.0.1:{self.port}/{behaviour}/v1"

    def conn(self, marker: str, timeout: float = 5.0) -> Conn:
        """The connection whose request carried `marker` (waits for it to arrive)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for c in self.conns:
                    if c.marker == marker:
                        return c
            time.sleep(0.01)
        raise AssertionError(f"no upstream request carried {marker}")

    # ---- the server --------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn: Conn | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            path = request_line.split(" ")[1]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
            marker = _MARKER.search(raw)
            conn = Conn(
                path.split("/")[1], marker.group().decode() if marker else None, orjson.loads(raw or b"{}"), path
            )
            with self._lock:
                self.conns.append(conn)
            watcher = asyncio.ensure_future(self._watch(reader, conn))
            try:
                await getattr(self, "_" + conn.behaviour)(writer, conn)
            finally:
                watcher.cancel()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            if conn is not None and not conn.peer_closed.is_set():  # a write failed: the gateway hung up
                conn.peer_closed_at = time.monotonic()
                conn.peer_closed.set()
        finally:
            if conn is not None:
                conn.done.set()
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    async def _watch(reader: asyncio.StreamReader, conn: Conn) -> None:
        # The request was read in full, so EOF here means the gateway closed its side.
        with contextlib.suppress(ConnectionError):
            await reader.read(1)
        conn.peer_closed_at = time.monotonic()
        conn.peer_closed.set()

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, conn: Conn, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        conn.bytes_sent += len(data)

    @staticmethod
    def _head(status: str, ctype: str, extra: str = "") -> bytes:
        return f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\nconnection: close\r\n{extra}\r\n".encode()

    async def _json(self, writer: asyncio.StreamWriter, conn: Conn, body: bytes, status: str = "200 OK") -> None:
        await self._send(
            writer, conn, self._head(status, "application/json", f"content-length: {len(body)}\r\n") + body
        )

    async def _sse_head(self, writer: asyncio.StreamWriter, conn: Conn) -> None:
        await self._send(writer, conn, self._head("200 OK", "text/event-stream", "transfer-encoding: chunked\r\n"))

    async def _event(self, writer: asyncio.StreamWriter, conn: Conn, data: bytes) -> None:
        await self._send(writer, conn, f"{len(data):x}\r\n".encode() + data + b"\r\n")
        conn.chunks_sent += 1

    # ---- behaviours --------------------------------------------------------------------------------

    async def _ok(self, writer: asyncio.StreamWriter, conn: Conn) -> None:
        model = conn.body.get("model", "m")
        if conn.path.endswith("/embeddings"):
            data = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}], "model": model}
            await self._json(writer, conn, orjson.dumps(data))
            return
        if not conn.body.get("stream"):
            await self._json(writer, conn, _completion(model, "all good"))
            return
        await self._sse_head(writer, conn)
        for word in ("all ", "good"):
            await self._event(writer, conn, _chunk(model, word))
        await self._event(writer, conn, _chunk(model, None, "stop"))
        await self._event(writer, conn, b"data: [DONE]\n\n")
        await self._send(writer, conn, b"0\r\n\r\n")

    async def _slow(self, writer: asyncio.StreamWriter, conn: Conn) -> None:
        model = conn.body.get("model", "m")
        if not conn.body.get("stream"):
            await asyncio.sleep(1.5)
            await self._json(writer, conn, _completion(model, "slow and steady"))
            return
        await self._sse_head(writer, conn)
        for i in range(40):
            await self._event(writer, conn, _chunk(model, f"c{i} "))
            await asyncio.sleep(0.1)
        await self._event(writer, conn, _chunk(model, None, "stop"))
        await self._event(writer, conn, b"data: [DONE]\n\n")
        await self._send(writer, conn, b"0\r\n\r\n")

    async def _reset(self, writer: asyncio.StreamWriter, conn: Conn) -> None:
        body = _completion(conn.body.get("model", "m"), "this answer is cut off by a reset")
        await self._send(writer, conn, self._head("200 OK", "application/json", f"content-length: {len(body)}\r\n"))
        await self._send(writer, conn, body[:40])
        await asyncio.sleep(0.05)
        FaultUpstream._reset_socket(writer)

    @staticmethod
    def _reset_socket(writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # closing sends RST
        writer.transport.abort()

    async def _resetstream(self, writer: asyncio.StreamWriter, conn: Conn) -> None:
        model = conn.body.get("model", "m")
        await self._sse_head(writer, conn)
        await self._event(writer, conn, _chunk(model, "partial "))
        await self._event(writer, conn, _chunk(model, "answer"))
        await asyncio.sleep(0.1)
        self._reset_socket(writer)

    async def _cutclean(self, writer: asyncio.StreamWriter, conn: Conn) -> None:
        model = conn.body.get("model", "m")
        await self._sse_head(writer, conn)
        await self._event(writer, conn, _chunk(model, "partial "))
        await self._event(writer, conn, _chunk(model, "answer"))
        await self._send(writer, conn, b"0\r\n\r\n")

    async def _hang(self, writer: asyncio.StreamWriter, conn: Conn) -> None:
        await asyncio.wait_for(asyncio.to_thread(conn.peer_closed.wait, 30), 31)

    async def _tricklemid(self, writer: asyncio.StreamWriter, conn: Conn) -> None:
        await self._sse_head(writer, conn)
        await self._event(writer, conn, _chunk(conn.body.get("model", "m"), "first "))
        await self._trickle(writer, conn, head=False)

    async def _trickle(self, writer: asyncio.StreamWriter, conn: Conn, head: bool = True) -> None:
        if head:
            await self._sse_head(writer, conn)
        for _ in range(200):  # at most 30 s
            if conn.peer_closed.is_set():
                return
            await self._send(writer, conn, b"1\r\n:\r\n")  # one byte of an SSE comment, never a whole event
            await asyncio.sleep(0.15)

    async def _badjson(self, writer: asyncio.StreamWriter, conn: Conn) -> None:
        await self._json(writer, conn, b'{"id": "x", "choices": [ {not json')

    async def _html(self, writer: asyncio.StreamWriter, conn: Conn) -> None:
        body = b"<html><body>502 Bad Gateway</body></html>"
        await self._send(writer, conn, self._head("200 OK", "text/html", f"content-length: {len(body)}\r\n") + body)

    async def _huge(self, writer: asyncio.StreamWriter, conn: Conn) -> None:
        await self._send(writer, conn, self._head("200 OK", "application/json"))  # close-delimited body
        await self._send(writer, conn, b'{"id": "x", "junk": "')
        block = b"x" * 65536
        for _ in range(16 * 1024):  # at most 1 GiB, but the gateway hangs up long before
            if conn.peer_closed.is_set():
                return
            await self._send(writer, conn, block)

    async def _hugestream(self, writer: asyncio.StreamWriter, conn: Conn) -> None:
        model = conn.body.get("model", "m")
        await self._sse_head(writer, conn)
        event = _chunk(model, "y" * 8192)
        for _ in range(128 * 1024):  # at most 1 GiB
            if conn.peer_closed.is_set():
                return
            await self._event(writer, conn, event)

    async def _error500(self, writer: asyncio.StreamWriter, conn: Conn) -> None:
        await self._json(
            writer, conn, b'{"error": {"message": "upstream exploded", "type": "server_error"}}', "500 Error"
        )
