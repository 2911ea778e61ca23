"""The OpenAI-compatible family: what differs per service (base, key, refused parameters, stream quirks)."""

from __future__ import annotations

import pytest

from gateway.errors import ConfigError, InvalidRequest, UpstreamStatusError, UpstreamUnavailable
from gateway.providers.base import StreamState
from gateway.providers.common import ToolCallNormalizer
from gateway.streaming import SSEEvent
from tests.helpers import make_config
from tests.unit.providers.conformance import build

ASK = {"messages": [{"role": "user", "content": "hi"}]}


def provider(name: str, config: dict | None = None, endpoint_type: str = "llm/v1/chat"):
    return build(
        name, {"endpoint_type": endpoint_type, "model": "m", "config": {"api_key": "k"} if config is None else config}
    )


@pytest.mark.parametrize(
    ("name", "config", "extra", "param"),
    [
        ("groq", None, {"logprobs": True}, "logprobs"),
        ("groq", None, {"logit_bias": {"1": 1}}, "logit_bias"),
        ("groq", None, {"n": 2}, "n"),
        ("deepseek", None, {"seed": 3}, "seed"),
        ("deepseek", None, {"n": 2}, "n"),
        (
            "deepseek",
            None,
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        ("mistral", {"mistral_api_key": "k"}, {"logit_bias": {"1": 1}}, "logit_bias"),
        ("mistral", {"mistral_api_key": "k"}, {"user": "u1"}, "user"),
    ],
)
def test_parameters_a_service_cannot_honour_are_refused_by_name(name, config, extra, param):
    with pytest.raises(InvalidRequest) as info:
        provider(name, config).chat_request({**ASK, **extra}, False)
    assert info.value.param == param and repr(name) in info.value.message


def test_completions_refuse_several_prompts_when_served_through_chat():
    p = provider("groq", endpoint_type="llm/v1/completions")
    with pytest.raises(InvalidRequest, match="one prompt per request"):
        p.completions_request({"prompt": ["a", "b"]}, False)


@pytest.mark.parametrize(
    ("name", "config", "url", "auth"),
    [
        ("ollama", {}, "http://localhost:11434/v1/chat/completions", None),
        ("ollama", {"api_key": "ollama"}, "http://localhost:11434/v1/chat/completions", None),
        (
            "ollama",
            {"api_key": "real", "api_base": "https://ollama.example/v1"},
            "https://ollama.example/v1/chat/completions",
            "Bearer real",
        ),
        ("vllm", {}, "http://localhost:8000/v1/chat/completions", None),
        (
            "groq",
            {"api_key": "g", "api_base": "https://proxy.example/groq/v1/"},
            "https://proxy.example/groq/v1/chat/completions",
            "Bearer g",
        ),
        ("xai", {"api_key": "x"}, "https://api.x.ai/v1/chat/completions", "Bearer x"),
        ("openrouter", {"api_key": "o"}, "https://openrouter.ai/api/v1/chat/completions", "Bearer o"),
        ("deepseek", {"api_key": "d"}, "https://api.deepseek.com/v1/chat/completions", "Bearer d"),
        ("togetherai", {"togetherai_api_key": "t"}, "https://api.together.xyz/v1/chat/completions", "Bearer t"),
        ("mistral", {"mistral_api_key": "m"}, "https://api.mistral.ai/v1/chat/completions", "Bearer m"),
    ],
)
def test_base_urls_and_keys(name, config, url, auth):
    up = provider(name, config).chat_request(ASK, False)
    assert up.url == url and up.headers.get("Authorization") == auth


def test_mistral_streams_without_stream_options_and_renames_seed():
    up = provider("mistral", {"mistral_api_key": "k"}).chat_request({**ASK, "seed": 1, "tool_choice": "required"}, True)
    assert "stream_options" not in up.json and up.json["random_seed"] == 1 and up.json["tool_choice"] == "any"


@pytest.mark.parametrize(
    ("yaml_config", "message"),
    [
        (
            "{provider: openai-compatible, name: m, config: {api_key: k}}",
            "endpoints[0].model.config.api_base: field required",
        ),
        ("{provider: groq, name: m, config: {}}", "endpoints[0].model.config.api_key: field required"),
        (
            "{provider: mistral, name: m, config: {api_key: k}}",
            "endpoints[0].model.config.mistral_api_key: field required",
        ),
        ("{provider: palm, name: m, config: {}}", "use gemini instead"),
        (
            "{provider: grok, name: m, config: {}}",
            "unknown provider 'grok' (known: amazon-bedrock, anthropic, bedrock, cohere",
        ),
    ],
)
def test_config_errors_name_the_key_path(yaml_config, message):
    with pytest.raises(ConfigError) as info:
        make_config(f"endpoints: [{{name: e, endpoint_type: llm/v1/chat, model: {yaml_config}}}]")
    assert message in str(info.value)


def test_a_service_without_embeddings_is_refused_at_load():
    with pytest.raises(ConfigError, match=r"provider 'groq' does not serve llm/v1/embeddings \(it serves: llm/v1/chat"):
        make_config(
            "endpoints: [{name: e, endpoint_type: llm/v1/embeddings, model: {provider: groq, name: m, config: {api_key: k}}}]"
        )


def test_unknown_provider_lists_the_new_ones():
    with pytest.raises(ConfigError) as info:
        make_config("endpoints: [{name: e, endpoint_type: llm/v1/chat, model: {provider: nope, name: m, config: {}}}]")
    for name in (
        "groq",
        "deepseek",
        "xai",
        "openrouter",
        "ollama",
        "vllm",
        "openai-compatible",
        "mistral",
        "togetherai",
    ):
        assert name in str(info.value)


def test_error_in_a_stream_and_error_bodies():
    p = provider("openrouter")
    with pytest.raises(UpstreamUnavailable, match="Provider returned error"):
        p.chat_chunk(SSEEvent('{"error": {"code": 502, "message": "Provider returned error"}}'), StreamState())
    err = p.error(401, b'{"error": {"message": "Invalid API key k", "code": 401}}', {})
    assert isinstance(err, UpstreamStatusError) and err.status_code == 401 and " k" not in err.message
    err = provider("mistral", {"mistral_api_key": "mk"}).error(
        422, b'{"object": "error", "message": "Extra inputs are not permitted", "type": "invalid_request_error"}', {}
    )
    assert err.status_code == 422 and "Extra inputs" in err.message


def test_normalizer_assigns_indexes_by_id_and_sends_identity_once():
    n = ToolCallNormalizer()
    first = n.delta([{"id": "a", "function": {"name": "f", "arguments": "{"}}, {"id": "b", "function": {"name": "g"}}])
    assert [c["index"] for c in first] == [0, 1] and all(c["type"] == "function" for c in first)
    assert n.delta([{"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]) == [
        {"index": 1, "function": {"arguments": "{}"}}
    ]
    assert n.delta([{"function": {"arguments": ""}}]) == []
    assert n.delta([{"function": {"arguments": "}"}}]) == [{"index": 1, "function": {"arguments": "}"}}]
