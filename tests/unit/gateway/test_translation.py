"""Provider translation as pure functions of data: no HTTP."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidRequest, UpstreamStatusError, UpstreamUnavailable, clean_message
from gateway.providers.anthropic import AnthropicProvider, translate_messages
from gateway.providers.openai import OpenAIProvider
from tests.helpers import make_config

CONFIG = """
endpoints:
  - name: claude
    endpoint_type: llm/v1/chat
    model: {provider: anthropic, name: claude-x, config: {anthropic_api_key: sk-ant-xyz}}
  - name: azure
    endpoint_type: llm/v1/chat
    model:
      provider: openai
      name: gpt-4o
      config:
        openai_api_key: azkey
        openai_api_type: azure
        openai_api_base: https://res.openai.azure.com/
        openai_api_version: "2024-06-01"
        openai_deployment_name: my-dep
  - name: azuread
    endpoint_type: llm/v1/embeddings
    model:
      provider: openai
      name: emb
      config:
        openai_api_key: token
        openai_api_type: azuread
        openai_api_base: https://res.openai.azure.com
        openai_api_version: "2024-06-01"
        openai_deployment_name: emb-dep
  - name: openai
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: gpt-4o, config: {openai_api_key: k, openai_organization: org-1, openai_api_base: "http://local:8000/v1/"}}
gateway: {allow_insecure_http: true}  # "local" is a private-network host: plain http needs the opt-in
"""


def provider(name: str):
    config = make_config(CONFIG)
    ep = config.endpoint(name)
    cls = AnthropicProvider if ep.model.provider == "anthropic" else OpenAIProvider
    return cls(ep, config.provider_configs[name], client=None)


def test_openai_urls_and_headers_for_each_api_type():
    up = provider("azure").chat_request({"messages": []}, False)
    assert up.url == "https://res.openai.azure.com/openai/deployments/my-dep/chat/completions?api-version=2024-06-01"
    assert up.headers["api-key"] == "azkey" and "Authorization" not in up.headers
    up = provider("azuread").embeddings_request({"input": "x"}, False)
    assert up.url.startswith("https://res.openai.azure.com/openai/deployments/emb-dep/embeddings?")
    assert up.headers["Authorization"] == "Bearer token"
    up = provider("openai").chat_request({"messages": [], "stream_options": {"include_usage": False}}, True)
    assert up.url == "http://local:8000/v1/chat/completions" and up.headers["OpenAI-Organization"] == "org-1"
    assert up.json["stream_options"] == {"include_usage": True} and up.json["model"] == "gpt-4o"


def test_anthropic_messages_merge_roles_and_map_tools_and_images():
    system, messages = translate_messages(
        [
            {"role": "system", "content": "A"},
            {"role": "developer", "content": [{"type": "text", "text": "B"}]},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
            {"role": "user", "content": "what is it?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ]
    )
    assert system == "A\nB"
    assert messages == [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "text", "text": "what is it?"},
            ],
        },
        {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "42"}]},
    ]


def test_anthropic_tools_and_tool_choice():
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
    }
    payload = provider("claude").chat_request(body, False).json
    assert payload["tools"] == [{"name": "f", "description": "d", "input_schema": {"type": "object"}}]
    assert payload["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    body["tool_choice"] = {"type": "function", "function": {"name": "f"}}
    assert provider("claude").chat_request(body, False).json["tool_choice"]["name"] == "f"


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"n": 2}, "n"), ({"presence_penalty": 0.5}, "presence_penalty"), ({"seed": 1}, "seed")],
)
def test_anthropic_refuses_parameters_it_cannot_honour(extra, param):
    with pytest.raises(InvalidRequest) as info:
        provider("claude").chat_request({"messages": [{"role": "user", "content": "x"}], **extra}, False)
    assert info.value.param == param


def test_anthropic_response_with_tool_use():
    data = {
        "id": "msg",
        "model": "claude-x",
        "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 3, "cache_read_input_tokens": 7, "output_tokens": 2},
    }
    out = provider("claude").chat_response(data)
    message = out["choices"][0]["message"]
    assert message["content"] is None and message["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a":1}'}
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert out["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 2,
        "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 7},
    }


def test_error_mapping_cleans_secrets_and_picks_status():
    p = provider("claude")
    body = b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key sk-ant-xyz"}}'
    err = p.error(401, body, {})
    assert isinstance(err, UpstreamStatusError) and err.status_code == 401 and "sk-ant-xyz" not in err.message
    err = p.error(529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', {})
    assert isinstance(err, UpstreamUnavailable) and err.status_code == 502 and "Overloaded" in err.message
    err = p.error(429, b"slow down", {"retry-after": "3"})
    assert err.status_code == 429 and err.headers == {"Retry-After": "3"}


def test_clean_message_redacts_key_shapes():
    text = clean_message("key sk-proj-abcdef123 and Authorization: Bearer abc.def and AKIAABCDEFGHIJKLMNOP")
    assert "sk-proj-abcdef123" not in text and "abc.def" not in text and "AKIAABCDEFGHIJKLMNOP" not in text
