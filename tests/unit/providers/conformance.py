"""Golden conformance cases: load them, build their provider, run their translation (no HTTP).

A case is one JSON file under tests/fixtures/providers/<provider>/:

    endpoint_type, model, config      the endpoint under test (config as in YAML; secrets literal)
    gateway                           optional top-level gateway settings
    request                           the client's OpenAI-shaped body
    stream                            whether the client asked for a stream
    covers                            capabilities this case demonstrates (the docs matrix is built from these)
    upstream_response | upstream_sse  what the upstream answers (written from the provider's API reference;
                                      upstream_sse names a raw SSE file next to the case)
    upstream_request                  expected: {url, headers, json} the gateway sends
    expected                          expected: the OpenAI response, or the list of OpenAI chunks
    final_message                     for tool streams: the message the OpenAI SDK assembles

`expected` and `upstream_request` are golden outputs: review them by hand; regenerate with
`UPDATE_GOLDENS=1 .venv/bin/pytest tests/unit/providers` after an intended change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gateway.config import parse_config
from gateway.providers import get_provider_class
from gateway.providers.base import CHAT, COMPLETIONS, EMBEDDINGS, StreamState
from gateway.streaming import SSEDecoder, SSEEvent

CASES_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "providers"
UPDATE = os.environ.get("UPDATE_GOLDENS") == "1"
CAPABILITIES = ("chat", "stream", "completions", "embeddings", "tools", "tools_stream", "json_mode", "vision")


@dataclass
class Case:
    path: Path
    data: dict[str, Any]

    @property
    def provider_name(self) -> str:
        return self.path.parent.name

    @property
    def id(self) -> str:
        return f"{self.provider_name}/{self.path.stem}"

    @property
    def endpoint_type(self) -> str:
        return self.data["endpoint_type"]

    @property
    def stream(self) -> bool:
        return bool(self.data.get("stream"))

    def sse(self) -> bytes:
        return (self.path.parent / self.data["upstream_sse"]).read_bytes()

    def save(self) -> None:
        self.path.write_bytes(orjson.dumps(self.data, option=orjson.OPT_INDENT_2) + b"\n")


def load_cases() -> list[Case]:
    return [Case(p, orjson.loads(p.read_bytes())) for p in sorted(CASES_DIR.glob("*/*.json"))]


def endpoint_yaml(provider: str, case: dict[str, Any], name: str = "ep") -> dict[str, Any]:
    return {
        "name": name,
        "endpoint_type": case["endpoint_type"],
        "model": {"provider": case.get("provider", provider), "name": case.get("model"), "config": case["config"]},
    }


def config_document(provider: str, case: dict[str, Any], name: str = "ep") -> dict[str, Any]:
    """The YAML document (as data) serving one case; `gateway` settings come from the case."""
    doc: dict[str, Any] = {"endpoints": [endpoint_yaml(provider, case, name)]}
    if case.get("gateway"):
        doc["gateway"] = case["gateway"]
    return doc


def build(provider: str, case: dict[str, Any]) -> Any:
    config = parse_config(config_document(provider, case), strict=True)
    ep = config.endpoints[0]
    cls = get_provider_class(ep.model.provider)
    return cls(ep, config.provider_configs[ep.name], None)


def requester(p: Any, endpoint_type: str) -> Any:
    return {CHAT: p.chat_request, COMPLETIONS: p.completions_request, EMBEDDINGS: p.embeddings_request}[endpoint_type]


def decode_sse(raw: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return decoder.feed(raw) + decoder.close()


def zero_created(value: Any) -> Any:
    """Responses we build stamp `created` with the clock: compare with it zeroed."""
    if isinstance(value, list):
        return [zero_created(v) for v in value]
    if isinstance(value, dict) and "created" in value:
        return {**value, "created": 0}
    return value


def translate(case: Case) -> tuple[dict[str, Any], Any]:
    """(upstream request as {url, headers, json}, translated response or chunk list)."""
    p = build(case.provider_name, case.data)
    up = requester(p, case.endpoint_type)(dict(case.data["request"]), case.stream)
    upstream = {"url": up.url, "headers": dict(up.headers), "json": up.json}
    if case.stream:
        state = StreamState(created=0)
        chunker = p.chat_chunk if case.endpoint_type == CHAT else p.completions_chunk
        out: Any = [c for event in decode_sse(case.sse()) for c in chunker(event, state)]
    else:
        responder = {CHAT: p.chat_response, COMPLETIONS: p.completions_response, EMBEDDINGS: p.embeddings_response}
        out = responder[case.endpoint_type](orjson.loads(orjson.dumps(case.data["upstream_response"])))
    return orjson.loads(orjson.dumps(upstream)), zero_created(orjson.loads(orjson.dumps(out)))


def accumulate(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The final message as the OpenAI SDK's own stream accumulator assembles it."""
    from openai.lib.streaming.chat import ChatCompletionStreamState
    from openai.types.chat import ChatCompletionChunk

    state = ChatCompletionStreamState()
    for c in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(c))
    completion = state.get_final_completion()
    choice = completion.choices[0]
    message = choice.message
    calls = [
        {"type": c.type, "function": {"name": c.function.name, "arguments": orjson.loads(c.function.arguments)}}
        for c in message.tool_calls or ()
    ]
    return {"content": message.content or None, "tool_calls": calls, "finish_reason": choice.finish_reason}
