"""Gemini translation details the golden cases don't spell out: finish reasons, refusals, blocked prompts."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidRequest, UpstreamStatusError
from gateway.providers.base import StreamState
from gateway.streaming import SSEEvent
from tests.unit.providers.conformance import build


def gemini(endpoint_type: str = "llm/v1/chat"):
    return build(
        "gemini",
        {"endpoint_type": endpoint_type, "model": "models/gemini-2.0-flash", "config": {"gemini_api_key": "AIza-k"}},
    )


ASK = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reasons(reason, finish):
    data = {"candidates": [{"content": {"parts": [{"text": "x"}], "role": "model"}, "finishReason": reason}]}
    assert gemini().chat_response(data)["choices"][0]["finish_reason"] == finish


def test_blocked_prompt_answers_content_filter():
    out = gemini().chat_response(
        {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4}}
    )
    assert out["choices"][0]["finish_reason"] == "content_filter" and out["usage"]["prompt_tokens"] == 4


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": ASK, "logit_bias": {"1": 2}}, "logit_bias"),
        ({"messages": ASK, "logprobs": True}, "logprobs"),
        (
            {"messages": ASK, "tools": [{"type": "function", "function": {"name": "f"}}], "parallel_tool_calls": False},
            "parallel_tool_calls",
        ),
        ({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "1"}]}, "messages[0].tool_call_id"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]}
                ]
            },
            "messages[0].content[0]",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}, "messages[0]"),
        ({"messages": ASK, "tools": [{"type": "web_search"}]}, "tools"),
    ],
)
def test_refusals_name_the_parameter(body, param):
    with pytest.raises(InvalidRequest) as info:
        gemini().chat_request(body, False)
    assert info.value.param == param and "gemini" in info.value.message


def test_named_tool_choice_and_models_prefix():
    body = {
        "messages": ASK,
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
    }
    up = gemini().chat_request(body, True)
    assert up.url.endswith("/models/gemini-2.0-flash:streamGenerateContent?alt=sse")
    assert up.json["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}
    assert up.json["tools"] == [{"functionDeclarations": [{"name": "f"}]}]


def test_parallel_results_share_one_user_turn_and_thought_signatures_go_back():
    calls = [
        {
            "id": f"c{i}",
            "type": "function",
            "function": {"name": f"f{i}", "arguments": "{}"},
            "thought_signature": "sig",
        }
        for i in (1, 2)
    ]
    messages = [
        *ASK,
        {"role": "assistant", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": "1"},
        {"role": "tool", "tool_call_id": "c2", "content": "[2]"},
    ]
    contents = gemini().chat_request({"messages": messages}, False).json["contents"]
    assert contents[1]["parts"][0] == {
        "functionCall": {"id": "c1", "name": "f1", "args": {}},
        "thoughtSignature": "sig",
    }
    assert contents[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"id": "c1", "name": "f1", "response": {"result": 1}}},
            {"functionResponse": {"id": "c2", "name": "f2", "response": {"result": [2]}}},
        ],
    }


def test_embeddings_refuse_token_ids_and_base64():
    p = gemini("llm/v1/embeddings")
    with pytest.raises(InvalidRequest, match="token ids"):
        p.embeddings_request({"input": [[1, 2]]}, False)
    with pytest.raises(InvalidRequest, match="floats only"):
        p.embeddings_request({"input": "x", "encoding_format": "base64"}, False)


def test_errors_in_body_and_in_stream():
    p = gemini()
    body = b'{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}}'
    err = p.error(400, body, {})
    assert isinstance(err, UpstreamStatusError) and err.status_code == 400 and "API key not valid" in err.message
    with pytest.raises(Exception, match="overloaded"):
        p.chat_chunk(
            SSEEvent('{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}'),
            StreamState(),
        )
