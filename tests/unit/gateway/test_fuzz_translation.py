"""Property tests for stream translation: however the upstream's bytes are cut, clients get the same chunks.

Runs each provider's real `stream()` (SSE decoding, translation, the per-event idle check) over a
fake upstream client that hands the body over in the pieces hypothesis picks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings, strategies as st

from gateway.providers.anthropic import AnthropicProvider
from gateway.providers.base import CHAT, StreamChunk, StreamState
from gateway.providers.openai import OpenAIProvider
from gateway.tap import StreamAssembler
from tests.helpers import make_config

FIXTURES = Path(__file__).parents[2] / "fixtures" / "sse"
FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
CONFIG = """
endpoints:
  - name: claude
    endpoint_type: llm/v1/chat
    model: {provider: anthropic, name: claude-x, config: {anthropic_api_key: sk-ant-fuzz-0000}}
  - name: gpt
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: gpt-4o, config: {openai_api_key: sk-fuzz-0000}}
"""
BODY = {"model": "x", "messages": [{"role": "user", "content": "hi"}], "stream": True}
cuts = st.lists(st.integers(min_value=0), max_size=16)
text = st.text(max_size=12)  # any unicode, so multi-byte characters get cut too


class PiecesResponse:
    """An upstream answer delivered in the given pieces, as a socket might."""

    status_code = 200
    headers: Mapping[str, str] = {"content-type": "text/event-stream"}

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces

    async def read(self) -> bytes:
        return b"".join(self._pieces)

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece

    async def aclose(self) -> None:
        return None


class PiecesClient:
    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def send(self, url: str, body: bytes, headers: Mapping[str, str], **_: Any) -> PiecesResponse:
        return PiecesResponse(self.pieces)


def split(data: bytes, points: list[int]) -> list[bytes]:
    marks = sorted({p % (len(data) + 1) for p in points})
    out, last = [], 0
    for m in marks:
        out.append(data[last:m])
        last = m
    return [*out, data[last:]]


def run(name: str, pieces: list[bytes]) -> tuple[list[StreamChunk], dict[str, Any]]:
    config = make_config(CONFIG)
    ep = config.endpoint(name)
    cls = AnthropicProvider if name == "claude" else OpenAIProvider
    provider = cls(ep, config.provider_configs[name], PiecesClient(pieces))  # type: ignore[arg-type]

    async def collect() -> list[StreamChunk]:
        return [chunk async for chunk in provider.stream(CHAT, BODY, StreamState())]

    chunks = asyncio.run(collect())
    assembled = StreamAssembler()
    for chunk in chunks:
        assembled.add(chunk.data)
    return chunks, assembled.response()


def comparable(chunks: list[StreamChunk]) -> list[tuple[bytes, bytes | None]]:
    # "created" is stamped when the stream starts; everything else must match exactly.
    return [(orjson.dumps({**c.data, "created": 0}), c.raw) for c in chunks]


def anthropic_stream(texts: list[str], args: list[str]) -> bytes:
    def event(kind: str, **data: Any) -> bytes:
        return f"event: {kind}\ndata: ".encode() + orjson.dumps({"type": kind, **data}) + b"\n\n"

    message = {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 3, "output_tokens": 1}}
    out = event("message_start", message=message) + event("ping")
    out += event("content_block_start", index=0, content_block={"type": "text", "text": ""})
    for t in texts:
        out += event("content_block_delta", index=0, delta={"type": "text_delta", "text": t})
    out += event("content_block_stop", index=0)
    if args:
        block = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}
        out += event("content_block_start", index=1, content_block=block)
        for a in args:
            out += event("content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": a})
        out += event("content_block_stop", index=1)
    out += event("message_delta", delta={"stop_reason": "tool_use" if args else "end_turn"}, usage={"output_tokens": 9})
    return out + event("message_stop")


def openai_stream(texts: list[str]) -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        data = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
        data |= {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return b"data: " + orjson.dumps(data) + b"\n\n"

    out = chunk({"role": "assistant", "content": ""})
    for t in texts:
        out += chunk({"content": t})
    usage = {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    out += chunk({}, "stop") + chunk({}, None, usage=usage)
    return out + b"data: [DONE]\n\n"


@FUZZ
@given(st.sampled_from(["claude", "gpt"]), cuts)
def test_recorded_streams_translate_the_same_under_any_split(name, points):
    raw = (FIXTURES / ("anthropic_chat_stream.txt" if name == "claude" else "openai_chat_stream.txt")).read_bytes()
    whole, expected = run(name, [raw])
    chunks, response = run(name, split(raw, points))
    assert comparable(chunks) == comparable(whole)
    assert response == expected
    assert expected["choices"][0]["message"]["content"] == "Hello, world"


@FUZZ
@given(st.lists(text, max_size=6), st.lists(text, max_size=4), cuts)
def test_anthropic_text_and_tool_arguments_survive_any_split(texts, args, points):
    raw = anthropic_stream(texts, args)
    chunks, response = run("claude", split(raw, points))
    assert comparable(chunks) == comparable(run("claude", [raw])[0])
    message = response["choices"][0]["message"]
    assert message["content"] == "".join(texts)
    if "".join(args):
        assert message["tool_calls"][0]["function"] == {"name": "lookup", "arguments": "".join(args)}
    assert response["choices"][0]["finish_reason"] == ("tool_calls" if args else "stop")
    assert response["usage"] == {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12}


@FUZZ
@given(st.lists(text, max_size=8), cuts)
def test_openai_passthrough_relays_identical_bytes_under_any_split(texts, points):
    raw = openai_stream(texts)
    chunks, response = run("gpt", split(raw, points))
    assert [c.raw for c in chunks] == [c.raw for c in run("gpt", [raw])[0]]
    assert b"".join(c.raw or b"" for c in chunks) == raw.removesuffix(b"data: [DONE]\n\n")
    assert response["choices"][0]["message"]["content"] == "".join(texts)
    assert response["usage"]["total_tokens"] == 5
