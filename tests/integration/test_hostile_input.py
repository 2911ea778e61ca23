"""Hostile input: every limit answers a clear 4xx naming the field and the setting; nothing hostile is a 5xx.

Also the upstream URL policy (SSRF): api_base schemes and hosts are checked when the config loads.
"""

from __future__ import annotations

import httpx
import pytest

from gateway.config import GatewayConfig
from gateway.egress import check_upstream_url
from gateway.errors import ConfigError
from gateway.limits import json_depth
from tests.helpers import BASE_CONFIG, flushed, make_config

pytestmark = pytest.mark.anyio
OPENAI = "https://api.openai.com/v1"
LIMITS = """
gateway:
  max_messages: 8
  max_content_chars: 1000
  max_json_depth: 12
  max_header_bytes: 4096
"""
OK = {
    "id": "x",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": None,
}


@pytest.fixture
def config() -> GatewayConfig:
    return make_config(BASE_CONFIG + LIMITS)


def chat(*contents: str, **extra) -> dict:
    return {"model": "chat", "messages": [{"role": "user", "content": c} for c in contents], **extra}


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def error_of(r: httpx.Response) -> dict:
    return r.json()["error"]


async def test_too_many_messages_is_400_naming_the_setting(app_client):
    r = await app_client.post("/v1/chat/completions", json=chat(*["hi"] * 9))
    err = error_of(r)
    assert r.status_code == 400 and err["param"] == "messages" and err["code"] == "too_many_messages"
    assert "9 messages is over the limit of 8 (gateway.max_messages)" in err["message"]
    r = await app_client.post("/endpoints/chat/invocations", json={"messages": [{"role": "user", "content": "x"}] * 9})
    assert r.status_code == 422 and "gateway.max_messages" in r.json()["detail"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/chat/completions", chat("a" * 600, "b" * 600), "messages"),
        (
            "/v1/chat/completions",
            chat(content=None) | {"messages": [{"role": "user", "content": [{"type": "text", "text": "c" * 1001}]}]},
            "messages",
        ),
        ("/v1/completions", {"model": "completions", "prompt": ["d" * 999, "ee"]}, "prompt"),
        ("/v1/embeddings", {"model": "embeddings", "input": "f" * 1001}, "input"),
    ],
)
async def test_too_much_content_is_400_naming_the_field(app_client, path, body, field):
    r = await app_client.post(path, json=body)
    err = error_of(r)
    assert r.status_code == 400 and err["param"] == field and err["code"] == "content_too_long"
    assert "over the limit of 1000 (gateway.max_content_chars)" in err["message"]


async def test_content_at_the_limit_passes(app_client, respx_mock):
    respx_mock.post(f"{OPENAI}/chat/completions").mock(return_value=httpx.Response(200, json=OK))
    r = await app_client.post("/v1/chat/completions", json=chat("a" * 500, "b" * 500))
    assert r.status_code == 200


async def test_deep_nesting_is_400(app_client):
    r = await app_client.post("/v1/chat/completions", json=chat("hi", tools=[nested(12)]))
    err = error_of(r)
    assert r.status_code == 400 and err["code"] == "too_deeply_nested" and "gateway.max_json_depth" in err["message"]


@pytest.mark.parametrize("depth", [300, 5000])
async def test_pathological_nesting_is_refused_and_recorded_without_the_body(app_client, memory_sink, depth):
    # 300 levels parse (orjson reads 1024) but no sink could encode them (orjson writes 254):
    # the body must be refused before it is kept for tracking. 5000 levels do not even parse.
    raw = (
        b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "x": ' + b"[" * depth + b"]" * depth + b"}"
    )
    r = await app_client.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400
    await flushed(app_client)
    (record,) = memory_sink.records
    assert record.status == 400 and record.request is None


async def test_oversized_headers_are_431(app_client):
    r = await app_client.post("/v1/chat/completions", json=chat("hi"), headers={"x-junk": "j" * 5000})
    err = error_of(r)
    assert r.status_code == 431 and err["code"] == "headers_too_large" and "gateway.max_header_bytes" in err["message"]


async def test_a_huge_endpoint_name_is_404_without_echoing_it(app_client):
    r = await app_client.post("/endpoints/" + "n" * 50_000 + "/invocations", json={"messages": []})
    assert r.status_code == 404 and len(r.text) < 1000
    r = await app_client.get("/v1/models/" + "m" * 50_000)
    assert r.status_code == 404 and len(r.text) < 1000


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model": "chat", "messages": [{"role": "user", "content": "\\ud800"}]}',  # lone surrogate
        b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "temperature": NaN}',
        b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "temperature": 1e400}',
        b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "n": 99999999999999999999999}',
        b'{"model": "chat", "model": "claude", "messages": "nope"}',
        b'{"model": ["chat"], "messages": []}',
        b'{"model": "chat", "messages": [null, 1, "x", []]}',
        b'{"model": "chat", "messages": [{"role": "user", "content": {"nested": true}}]}',
        b"\xff\xfe\x00garbage",
        b'{"model": "chat\\u0000", "messages": []}',
        b'"just a string"',
        b"{}" * 1000,
    ],
)
async def test_malformed_bodies_are_4xx_never_5xx(app_client, raw):
    r = await app_client.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert set(r.json()) == {"error"}


async def test_wrong_content_type_still_needs_a_json_object(app_client):
    r = await app_client.post("/v1/chat/completions", content=b"model=chat", headers={"content-type": "text/plain"})
    assert r.status_code == 400 and error_of(r)["param"] == "body"


def test_limits_are_gateway_settings_with_safe_defaults():
    gateway = make_config(BASE_CONFIG).gateway
    assert (gateway.max_messages, gateway.max_json_depth, gateway.max_header_bytes) == (2048, 64, 32768)
    assert gateway.max_content_chars == 4_000_000 and gateway.max_upstream_body_bytes == 64 * 1024 * 1024
    with pytest.raises(ConfigError, match=r"gateway.max_json_depth: Input should be less than or equal to 200"):
        make_config(BASE_CONFIG + "gateway: {max_json_depth: 1000}")


def test_json_depth_counts_containers_and_stops_early():
    assert json_depth("x", 10) == 0
    assert json_depth({"a": [1, {"b": []}]}, 10) == 4
    assert json_depth(nested(1000), 5) == 6


# ---- SSRF: where provider keys may be sent -------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allow_http", "refused"),
    [
        ("https://api.openai.com/v1", False, None),
        ("https://10.0.0.5/v1", False, None),
        ("http://127.0.0.1:8000/v1", False, None),
        ("http://localhost:11434/v1", False, None),
        ("http://[::1]:8000/v1", False, None),
        ("http://10.0.0.5:8000/v1", False, "allow_insecure_http"),
        ("http://10.0.0.5:8000/v1", True, None),
        ("http://192.168.1.20/v1", True, None),
        ("http://vllm:8000/v1", False, "allow_insecure_http"),
        ("http://vllm:8000/v1", True, None),
        ("http://llm.internal/v1", True, None),
        ("http://api.openai.com/v1", False, "public host"),
        ("http://api.openai.com/v1", True, "public host"),
        ("http://8.8.8.8/v1", True, "public host"),
        ("http://[::ffff:8.8.8.8]/v1", True, "public host"),
        ("https://169.254.169.254/latest", False, "link-local"),
        ("http://169.254.169.254/latest", True, "link-local"),
        ("file:///etc/passwd", True, "scheme 'file'"),
        ("ftp://example.com/", False, "scheme 'ftp'"),
        ("gopher://127.0.0.1:6379/_", False, "scheme 'gopher'"),
        ("api.openai.com/v1", False, r"scheme '\(none\)'"),
        ("https:///v1", False, "no host"),
        ("https://user:pw@api.openai.com/v1", False, "credentials in the URL"),
        ("http://[::1", False, "not a valid URL"),
    ],
)
def test_upstream_url_policy(url, allow_http, refused):
    if refused is None:
        check_upstream_url(url, "p", allow_insecure_http=allow_http)
    else:
        with pytest.raises(ConfigError, match=refused):
            check_upstream_url(url, "p", allow_insecure_http=allow_http)


def test_a_config_with_a_bad_api_base_is_refused_naming_the_key_path():
    text = """
endpoints:
  - name: chat
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: gpt-4o-mini, config: {openai_api_key: k, openai_api_base: "http://api.example.com/v1"}}
"""
    with pytest.raises(ConfigError, match=r"^endpoints\[0\].model.config.openai_api_base: http:// to the public host"):
        make_config(text)
    with pytest.raises(ConfigError, match=r"endpoints\[0\].model.config.anthropic_api_base: scheme 'file'"):
        make_config(
            text.replace(
                "openai, name: gpt-4o-mini, config: {openai_api_key: k, openai_api_base:",
                "anthropic, name: c, config: {anthropic_api_key: k, anthropic_api_base:",
            ).replace("http://api.example.com/v1", "file:///etc/passwd")
        )


def test_an_api_base_from_the_environment_is_checked_too(monkeypatch):
    monkeypatch.setenv("SSRF_BASE", "http://203.0.113.9/v1")
    text = """
endpoints:
  - name: chat
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: gpt-4o-mini, config: {openai_api_key: k, openai_api_base: $SSRF_BASE}}
"""
    with pytest.raises(ConfigError, match="public host 203.0.113.9"):
        make_config(text)
