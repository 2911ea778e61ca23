"""Every golden case through the running app: respx plays the upstream, the client sees OpenAI's shape."""

from __future__ import annotations

import httpx
import orjson
import pytest

from gateway.config import parse_config
from tests.helpers import flushed
from tests.unit.providers.conformance import config_document, load_cases, zero_created

pytestmark = pytest.mark.anyio
# python runs in-process and bedrock signs its own requests: both have their own route tests.
CASES = [c for c in load_cases() if c.provider_name not in ("python", "bedrock")]
ROUTES = {
    "llm/v1/chat": "/v1/chat/completions",
    "llm/v1/completions": "/v1/completions",
    "llm/v1/embeddings": "/v1/embeddings",
}


@pytest.fixture
def config(case):
    return parse_config(config_document(case.provider_name, case.data), strict=True)


def sse_events(body: bytes) -> list:
    out = []
    for block in body.decode().split("\n\n"):
        if block.startswith("data: "):
            data = block[6:]
            out.append(data if data == "[DONE]" else orjson.loads(data))
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_case_through_the_app(case, app_client, respx_mock, memory_sink):
    want = case.data["upstream_request"]
    if case.stream:
        reply = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=case.sse())
    else:
        reply = httpx.Response(200, json=case.data["upstream_response"])
    route = respx_mock.post(want["url"]).mock(return_value=reply)
    r = await app_client.post(ROUTES[case.endpoint_type], json={"model": "ep", **case.data["request"]})
    assert r.status_code == 200, r.text
    sent = route.calls.last.request
    assert str(sent.url) == want["url"]
    assert orjson.loads(sent.content) == want["json"]
    for key, value in want["headers"].items():
        assert sent.headers[key] == value
    if case.stream:
        got = sse_events(r.content)
        assert got[-1] == "[DONE]"
        # Unless the client asked for include_usage, the usage-only chunk is held back.
        asked = (case.data["request"].get("stream_options") or {}).get("include_usage")
        expected = [c for c in case.data["expected"] if asked or c["choices"] or not c.get("usage")]
        assert zero_created(got[:-1]) == expected
    else:
        assert zero_created(r.json()) == case.data["expected"]
    await flushed(app_client)
    (record,) = memory_sink.records
    assert record.status == 200 and record.provider == case.data.get("provider", case.provider_name)
    expected = case.data["expected"]
    usages = [c["usage"] for c in expected if c.get("usage")] if case.stream else [expected.get("usage")]
    if usages[-1] and usages[-1]["total_tokens"]:
        assert record.usage.total_tokens == usages[-1]["total_tokens"]
