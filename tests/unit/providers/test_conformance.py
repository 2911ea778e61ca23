"""Every golden case: the exact upstream request, and the exact OpenAI response or chunk sequence."""

from __future__ import annotations

import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.completion import Completion
from openai.types.create_embedding_response import CreateEmbeddingResponse

from tests.unit.providers.conformance import UPDATE, accumulate, load_cases, translate

CASES = load_cases()
STREAMS = [c for c in CASES if c.stream and c.endpoint_type == "llm/v1/chat"]
TOOL_STREAMS = [c for c in STREAMS if "tools_stream" in c.data["covers"]]
# What every provider's tool stream must assemble into, whatever its wire format.
CANONICAL_TOOL_MESSAGE = {
    "content": None,
    "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
    "finish_reason": "tool_calls",
}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_golden_translation(case):
    upstream, out = translate(case)
    if UPDATE:
        case.data["upstream_request"], case.data["expected"] = upstream, out
        case.save()
    assert upstream == case.data["upstream_request"]
    assert out == case.data["expected"]


@pytest.mark.parametrize("case", [c for c in CASES if not c.stream], ids=lambda c: c.id)
def test_responses_parse_as_the_openai_sdk_types(case):
    model = {
        "llm/v1/chat": ChatCompletion,
        "llm/v1/completions": Completion,
        "llm/v1/embeddings": CreateEmbeddingResponse,
    }[case.endpoint_type]
    model.model_validate(case.data["expected"])


@pytest.mark.parametrize("case", STREAMS, ids=lambda c: c.id)
def test_stream_chunks_parse_as_the_openai_sdk_types(case):
    for chunk in case.data["expected"]:
        ChatCompletionChunk.model_validate(chunk)


@pytest.mark.parametrize("case", TOOL_STREAMS, ids=lambda c: c.id)
def test_openai_sdk_accumulator_assembles_the_same_tool_call_from_every_provider(case):
    assert accumulate(case.data["expected"]) == CANONICAL_TOOL_MESSAGE


@pytest.mark.parametrize("case", TOOL_STREAMS, ids=lambda c: c.id)
def test_tool_call_deltas_are_what_strict_clients_expect(case):
    seen: dict[int, str] = {}
    for chunk in case.data["expected"]:
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls") or ():
                index = call["index"]
                if index not in seen:
                    assert call["type"] == "function" and call["id"] and call["function"]["name"]
                    seen[index] = call["id"]
                else:
                    assert set(call) == {"index", "function"}, "id/type sent again"
                    assert set(call["function"]) == {"arguments"} and call["function"]["arguments"], (
                        "name repeated or empty arguments delta"
                    )
    assert seen, "the stream carried no tool call"


@pytest.mark.parametrize("case", STREAMS, ids=lambda c: c.id)
def test_streams_report_usage(case):
    usages = [c["usage"] for c in case.data["expected"] if c.get("usage")]
    assert usages and usages[-1]["total_tokens"] > 0


def test_every_provider_has_cases():
    from gateway.providers import known_providers

    names = {c.provider_name for c in CASES}
    missing = set(known_providers()) - names - {"python", "amazon-bedrock"}
    assert not missing, f"providers without golden cases: {sorted(missing)}"


def test_cases_are_canonical_json():
    for case in CASES:
        assert case.path.read_bytes() == orjson.dumps(case.data, option=orjson.OPT_INDENT_2) + b"\n", case.id
