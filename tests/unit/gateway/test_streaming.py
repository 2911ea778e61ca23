"""SSE decoding is independent of how the bytes are cut into chunks."""

from __future__ import annotations

import random

import pytest

from gateway.streaming import SSEDecoder, SSEEvent
from tests.helpers import FIXTURES

STREAMS = ["openai_chat_stream.txt", "anthropic_chat_stream.txt"]


def decode(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    return events + decoder.close()


@pytest.mark.parametrize("name", STREAMS)
@pytest.mark.parametrize("seed", range(20))
def test_any_chunking_gives_the_same_events(name, seed):
    raw = (FIXTURES / "sse" / name).read_bytes()
    whole = decode([raw])
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(raw)), k=min(len(raw) - 1, rng.randint(1, 60))))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert decode(pieces) == whole
    assert decode([bytes([b]) for b in raw]) == whole


def test_fields_comments_crlf_and_multiline_data():
    raw = b": keep-alive\r\nevent: delta\r\ndata: line one\r\ndata:line two\r\n\r\ndata: [DONE]\n\n"
    assert decode([raw]) == [SSEEvent("line one\nline two", "delta"), SSEEvent("[DONE]")]


def test_last_event_without_blank_line_is_not_lost():
    assert decode([b"data: {}\n\ndata: tail"]) == [SSEEvent("{}"), SSEEvent("tail")]
