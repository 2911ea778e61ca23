"""Bedrock through the app: SigV4-signed requests, a real binary AWS event stream, credentials from aws_config."""

from __future__ import annotations

import struct
import zlib

import httpx
import orjson
import pytest

from gateway.config import parse_config
from tests.unit.providers.conformance import CASES_DIR, decode_sse

pytestmark = pytest.mark.anyio
URL = "https://bedrock-runtime.us-west-2.amazonaws.com/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0"
CASE = orjson.loads((CASES_DIR / "bedrock" / "stream_tools.json").read_bytes())
ASK = {"messages": [{"role": "user", "content": "Hi"}]}


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude, string headers, payload, CRCs."""
    encoded = b"".join(
        struct.pack("B", len(k)) + k.encode() + b"\x07" + struct.pack(">H", len(v)) + v.encode()
        for k, v in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_stream() -> bytes:
    sse = (CASES_DIR / "bedrock" / CASE["upstream_sse"]).read_bytes()
    return b"".join(
        frame({":event-type": e.event, ":content-type": "application/json", ":message-type": "event"}, e.data.encode())
        for e in decode_sse(sse)
    )


def endpoint(aws_config: dict) -> dict:
    return {
        "name": "claude",
        "endpoint_type": "llm/v1/chat",
        "model": {
            "provider": "amazon-bedrock",
            "name": "anthropic.claude-3-5-sonnet-20241022-v2:0",
            "config": {"aws_config": aws_config},
        },
    }


@pytest.fixture
def config(monkeypatch):
    monkeypatch.setenv("TEST_AWS_SECRET", "wJalrXUtnFEMI-from-env")
    monkeypatch.delenv("UNSET_AWS_SECRET", raising=False)
    keys = {"aws_region": "us-west-2", "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "$TEST_AWS_SECRET"}
    missing = {**keys, "aws_secret_access_key": "${UNSET_AWS_SECRET}"}
    bearer = {"aws_region": "us-west-2", "aws_bearer_token": "ABSKbedrock-api-key"}
    return parse_config(
        {
            "endpoints": [
                endpoint(keys),
                {**endpoint(missing), "name": "missing"},
                {**endpoint(bearer), "name": "bearer"},
            ]
        }
    )


async def test_stream_decodes_the_binary_event_stream_and_signs_the_request(app_client, respx_mock):
    route = respx_mock.post(f"{URL}/converse-stream").mock(
        return_value=httpx.Response(
            200, headers={"content-type": "application/vnd.amazon.eventstream"}, content=event_stream()
        )
    )
    r = await app_client.post("/v1/chat/completions", json={"model": "claude", **CASE["request"]})
    assert r.status_code == 200
    chunks = [orjson.loads(b[6:]) for b in r.text.split("\n\n") if b.startswith("data: {")]
    want = [c for c in CASE["expected"] if c["choices"]]
    assert [c["choices"] for c in chunks] == [c["choices"] for c in want]
    assert r.text.endswith("data: [DONE]\n\n")
    sent = route.calls.last.request
    auth = sent.headers["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") and "/us-west-2/bedrock/aws4_request" in auth
    assert sent.headers["x-amz-date"] and orjson.loads(sent.content) == CASE["upstream_request"]["json"]


async def test_exception_in_the_stream_is_sent_in_band(app_client, respx_mock):
    body = frame(
        {":event-type": "messageStart", ":content-type": "application/json", ":message-type": "event"},
        b'{"role":"assistant"}',
    )
    body += frame(
        {
            ":exception-type": "modelStreamErrorException",
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        b'{"message":"Model stream failed"}',
    )
    respx_mock.post(f"{URL}/converse-stream").mock(return_value=httpx.Response(200, content=body))
    r = await app_client.post("/v1/chat/completions", json={"model": "claude", "stream": True, **ASK})
    last = orjson.loads(r.text.strip().split("\n\n")[-1][6:])
    assert "Model stream failed" in last["error"]["message"] and "[DONE]" not in r.text


async def test_converse_errors_map_to_our_statuses(app_client, respx_mock):
    respx_mock.post(f"{URL}/converse").mock(
        return_value=httpx.Response(
            400,
            json={"message": "The provided model identifier is invalid."},
            headers={"x-amzn-errortype": "ValidationException"},
        )
    )
    r = await app_client.post("/v1/chat/completions", json={"model": "claude", **ASK})
    assert r.status_code == 400 and "model identifier is invalid" in r.json()["error"]["message"]


async def test_missing_variable_in_aws_config_answers_503_naming_it(app_client):
    r = await app_client.post("/v1/chat/completions", json={"model": "missing", **ASK})
    assert r.status_code == 503 and "UNSET_AWS_SECRET" in r.json()["error"]["message"]


async def test_bedrock_api_key_is_sent_as_bearer_without_signing(app_client, respx_mock):
    reply = {
        "output": {"message": {"role": "assistant", "content": [{"text": "Hello"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
    }
    route = respx_mock.post(f"{URL}/converse").mock(return_value=httpx.Response(200, json=reply))
    r = await app_client.post("/v1/chat/completions", json={"model": "bearer", **ASK})
    assert r.json()["choices"][0]["message"]["content"] == "Hello"
    assert route.calls.last.request.headers["authorization"] == "Bearer ABSKbedrock-api-key"
    assert "x-amz-date" not in route.calls.last.request.headers
