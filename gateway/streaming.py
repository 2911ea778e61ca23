"""SSE helpers: decode an upstream byte stream into events, encode chunks and errors for clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import orjson

DONE: Final = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str | None = None


def _parse_block(block: bytes) -> SSEEvent | None:
    data_lines: list[str] = []
    event: str | None = None
    for line in block.splitlines():
        if not line or line.startswith(b":"):
            continue  # comment / keep-alive
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data_lines.append(value.decode("utf-8", "replace"))
        elif field == b"event":
            event = value.decode("utf-8", "replace")
    if not data_lines and event is None:
        return None
    return SSEEvent("\n".join(data_lines), event)


class SSEDecoder:
    """Incremental decoder: feed it bytes as they arrive, get whole events back."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._buffer + chunk
        held = b""
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):
                # The "\n" of a "\r\n" may be in the next read: two line breaks would end the event.
                buffer, held = buffer[:-1], b"\r"
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *blocks, rest = buffer.split(b"\n\n")
        self._buffer = rest + held
        events = []
        for block in blocks:
            event = _parse_block(block)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[SSEEvent]:
        """Whatever is left when the stream ends without a final blank line."""
        rest, self._buffer = self._buffer, b""
        event = _parse_block(rest) if rest.strip() else None
        return [event] if event is not None else []


async def iter_sse(chunks: AsyncIterator[bytes]) -> AsyncIterator[SSEEvent]:
    decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.close():
        yield event


def encode_sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def encode_sse_error(error: dict[str, Any]) -> bytes:
    # Sent in-band: headers are already on the wire, so the status can't change.
    return b"data: " + orjson.dumps(error) + b"\n\n"
