"""Cohere v2 details beyond the golden cases: refusals, finish reasons, stream errors."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidRequest, UpstreamUnavailable
from gateway.providers.base import StreamState
from gateway.streaming import SSEEvent
from tests.unit.providers.conformance import build

ASK = [{"role": "user", "content": "hi"}]
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def cohere(endpoint_type: str = "llm/v1/chat"):
    return build(
        "cohere", {"endpoint_type": endpoint_type, "model": "command-a-03-2025", "config": {"cohere_api_key": "co-k"}}
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": ASK, "n": 2}, "n"),
        ({"messages": ASK, "logit_bias": {"1": 1}}, "logit_bias"),
        ({"messages": ASK, "user": "u"}, "user"),
        (
            {"messages": ASK, "tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "f"}}},
            "tool_choice",
        ),
        ({"messages": ASK, "tools": [TOOL], "parallel_tool_calls": False}, "parallel_tool_calls"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0]"),
    ],
)
def test_refusals_name_the_parameter(body, param):
    with pytest.raises(InvalidRequest) as info:
        cohere().chat_request(body, False)
    assert info.value.param == param and "cohere" in info.value.message


@pytest.mark.parametrize(
    ("reason", "finish"),
    [("COMPLETE", "stop"), ("STOP_SEQUENCE", "stop"), ("MAX_TOKENS", "length"), ("TOOL_CALL", "tool_calls")],
)
def test_finish_reasons(reason, finish):
    data = {
        "id": "x",
        "finish_reason": reason,
        "message": {"role": "assistant", "content": [{"type": "text", "text": "a"}]},
    }
    assert cohere().chat_response(data)["choices"][0]["finish_reason"] == finish


def test_usage_falls_back_to_billed_units():
    data = {
        "id": "x",
        "finish_reason": "COMPLETE",
        "message": {"content": []},
        "usage": {"billed_units": {"input_tokens": 3, "output_tokens": 2}},
    }
    assert cohere().chat_response(data)["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_embeddings_input_type_and_refusals():
    p = cohere("llm/v1/embeddings")
    assert (
        p.embeddings_request({"input": "q", "input_type": "search_query"}, False).json["input_type"] == "search_query"
    )
    with pytest.raises(InvalidRequest, match="token ids"):
        p.embeddings_request({"input": [[1, 2]]}, False)


def test_stream_error_event_is_raised():
    with pytest.raises(UpstreamUnavailable):
        cohere().chat_chunk(SSEEvent('{"type": "error", "error": {"message": "internal"}}', "error"), StreamState())
