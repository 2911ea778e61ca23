"""Every error status the gateway answers, on OpenAI routes, each naming the field or the cause."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import ANTHROPIC_KEY, OPENAI_KEY, flushed

pytestmark = pytest.mark.anyio
OPENAI = "https://api.openai.com/v1"
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "Hi"}]}
OK = {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": [], "usage": None}


def error_of(r: httpx.Response) -> dict:
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"messages": [{"role": "user", "content": "Hi"}]}, "model", "model: field required"),
        ({"model": "chat"}, "messages", "messages: field required"),
        ({"model": "chat", "messages": []}, "messages", "messages"),
        ({"model": "chat", "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role", "messages.0.role"),
        ({**CHAT, "temperature": 3}, "temperature", "temperature: Input should be less than or equal to 2"),
        ({**CHAT, "n": 0}, "n", "n:"),
        ({**CHAT, "stream": "yes"}, "stream", "stream:"),
    ],
)
async def test_invalid_body_is_400_naming_the_field(app_client, body, param, fragment):
    r = await app_client.post("/v1/chat/completions", json=body)
    assert r.status_code == 400
    err = error_of(r)
    assert err["type"] == "invalid_request_error" and err["param"] == param and fragment in err["message"]


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b""])
async def test_body_that_is_not_a_json_object_is_400(app_client, content):
    r = await app_client.post("/v1/chat/completions", content=content)
    assert r.status_code == 400 and error_of(r)["param"] == "body"


async def test_unknown_endpoint_and_wrong_type_are_404(app_client):
    r = await app_client.post("/v1/chat/completions", json={**CHAT, "model": "nope"})
    assert r.status_code == 404 and "'nope' is not configured" in error_of(r)["message"]
    r = await app_client.post("/v1/chat/completions", json={**CHAT, "model": "embeddings"})
    err = error_of(r)
    assert r.status_code == 404 and "llm/v1/embeddings endpoint, not llm/v1/chat" in err["message"]
    r = await app_client.post("/v1/embeddings", json={"model": "x" * 100_000, "input": "a"})
    assert r.status_code == 404 and len(r.text) < 1000, "huge input is not echoed"


async def test_unknown_path_is_404_in_openai_shape(app_client):
    r = await app_client.get("/v1/nothing-here")
    assert r.status_code == 404 and error_of(r)["type"] == "not_found_error"


async def test_oversized_body_is_413(app_client):
    huge = "x" * (11 * 1024 * 1024)
    r = await app_client.post("/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": huge}]})
    assert r.status_code == 413 and "over the limit" in error_of(r)["message"]


async def test_endpoint_limit_is_429_with_retry_after(app_client, respx_mock, memory_sink):
    respx_mock.post(f"{OPENAI}/chat/completions").mock(return_value=httpx.Response(200, json=OK))
    body = {**CHAT, "model": "limited"}
    assert [(await app_client.post("/v1/chat/completions", json=body)).status_code for _ in range(2)] == [200, 200]
    r = await app_client.post("/v1/chat/completions", json=body)
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert "2 calls per minute" in error_of(r)["message"]
    # The limit holds on the MLflow route too: it is the endpoint's, not the route's.
    r = await app_client.post("/endpoints/limited/invocations", json={"messages": CHAT["messages"]})
    assert r.status_code == 429 and "retry-after" in r.headers
    await flushed(app_client)
    assert [rec.status for rec in memory_sink.records] == [200, 200, 429, 429]


async def test_missing_credential_is_503_naming_the_variable(app_client):
    r = await app_client.post("/v1/chat/completions", json={**CHAT, "model": "keyless"})
    assert r.status_code == 503 and "UNSET_TEST_KEY is not set" in error_of(r)["message"]


@pytest.mark.parametrize(
    ("upstream", "status", "fragment"),
    [
        (httpx.Response(500, json={"error": {"message": "boom"}}), 502, "answered 500: boom"),
        (httpx.Response(503, text="<html>down</html>"), 502, "answered 503"),
        (httpx.Response(200, text="not json"), 502, "not JSON"),
        (httpx.Response(200, json={"unexpected": True}), 502, "malformed"),
        (httpx.Response(200, json=[1, 2]), 502, "not an object"),
    ],
)
async def test_upstream_failures_are_502(app_client, respx_mock, upstream, status, fragment):
    respx_mock.post(f"{OPENAI}/chat/completions").mock(return_value=upstream)
    r = await app_client.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == status and fragment in error_of(r)["message"]


async def test_connection_failure_is_502_and_timeout_is_504(app_client, respx_mock):
    route = respx_mock.post(f"{OPENAI}/chat/completions")
    route.side_effect = httpx.ConnectError("connection refused")
    r = await app_client.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 502 and "connection failed" in error_of(r)["message"]
    route.side_effect = httpx.ReadTimeout("slow")
    r = await app_client.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 504 and error_of(r)["type"] == "timeout_error"


async def test_upstream_4xx_passes_through_cleaned(app_client, respx_mock):
    leaked = {"error": {"message": f"Incorrect API key provided: {OPENAI_KEY}", "type": "invalid_request_error"}}
    respx_mock.post(f"{OPENAI}/chat/completions").mock(return_value=httpx.Response(401, json=leaked))
    r = await app_client.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 401
    assert "Incorrect API key" in error_of(r)["message"] and OPENAI_KEY not in r.text


async def test_upstream_429_passes_through_with_retry_after(app_client, respx_mock):
    respx_mock.post(f"{OPENAI}/chat/completions").mock(
        return_value=httpx.Response(429, headers={"retry-after": "7"}, json={"error": {"message": "slow down"}})
    )
    r = await app_client.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 429 and r.headers["retry-after"] == "7" and "slow down" in error_of(r)["message"]


async def test_stream_error_before_first_chunk_gets_a_real_status(app_client, respx_mock):
    respx_mock.post(f"{OPENAI}/chat/completions").mock(
        return_value=httpx.Response(500, json={"error": {"message": "x"}})
    )
    r = await app_client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert r.status_code == 502 and r.headers["content-type"] == "application/json"


async def test_stream_that_is_not_sse_is_502(app_client, respx_mock):
    respx_mock.post(f"{OPENAI}/chat/completions").mock(return_value=httpx.Response(200, json=OK))
    r = await app_client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert r.status_code == 502 and "instead of an event stream" in error_of(r)["message"]


async def test_stream_failure_after_first_byte_is_sent_in_band(app_client, respx_mock, memory_sink):
    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self):
            yield b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
            yield b'"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}\n\n'
            raise httpx.RemoteProtocolError("peer closed connection")

    respx_mock.post(f"{OPENAI}/chat/completions").mock(
        return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Broken())
    )
    r = await app_client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert r.status_code == 200
    blocks = [b for b in r.text.split("\n\n") if b]
    assert '"Hel"' in blocks[0]
    assert blocks[-1].startswith('data: {"error"') and "connection closed" in blocks[-1]
    assert "[DONE]" not in r.text
    await flushed(app_client)
    (record,) = memory_sink.records
    assert record.status == 502 and record.response["choices"][0]["message"]["content"] == "Hel"


async def test_secrets_never_reach_responses_or_metrics(app_client, respx_mock, caplog):
    respx_mock.post(f"{OPENAI}/chat/completions").mock(
        return_value=httpx.Response(400, json={"error": {"message": f"bad key {OPENAI_KEY} and Bearer {OPENAI_KEY}"}})
    )
    seen = []
    for body in (CHAT, {**CHAT, "stream": True}, {**CHAT, "model": "keyless"}):
        r = await app_client.post("/v1/chat/completions", json=body)
        seen.append(r.text + str(r.headers))
    seen.append((await app_client.get("/metrics")).text)
    seen.append((await app_client.get("/health")).text)
    seen.append((await app_client.get("/api/2.0/endpoints/")).text)
    seen.append(caplog.text)
    for text in seen:
        assert OPENAI_KEY not in text and ANTHROPIC_KEY not in text


async def test_refused_calls_are_recorded_and_counted_too(app_client, memory_sink):
    await app_client.post("/v1/chat/completions", json={**CHAT, "temperature": 9})
    await app_client.post("/v1/chat/completions", json={**CHAT, "model": "made-up-name"})
    await app_client.post("/endpoints/chat/invocations", json={"model": "x", "messages": []})
    await flushed(app_client)
    bad, unknown, mlflow = memory_sink.records
    assert (bad.endpoint, bad.provider, bad.status, bad.error["type"]) == (
        "chat",
        "openai",
        400,
        "invalid_request_error",
    )
    assert bad.request["temperature"] == 9
    assert (unknown.endpoint, unknown.provider, unknown.status) == ("made-up-name", "", 404)
    assert (mlflow.endpoint, mlflow.status, mlflow.route) == ("chat", 422, "/endpoints/{name}/invocations")
    metrics = (await app_client.get("/metrics")).text
    assert 'endpoint="(unknown)",route="/v1/chat/completions",status_class="4xx"' in metrics
    assert "made-up-name" not in metrics, "client-chosen names never become label values"


async def test_a_client_that_leaves_mid_body_is_recorded_as_499_and_gets_nothing(app_client, memory_sink, caplog):
    messages = iter(
        [
            {"type": "http.request", "body": b'{"model": "chat", "mess', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict] = []

    async def receive() -> dict:
        return next(messages)

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions", "query_string": b"",
        "root_path": "", "headers": [(b"content-type", b"application/json")], "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip
    await app_client.app(scope, receive, send)
    await flushed(app_client)
    assert sent == [], "no answer is written to a client that is gone"
    (record,) = memory_sink.records
    assert record.status == 499 and record.route == "/v1/chat/completions"
    assert not [r for r in caplog.records if r.levelname == "ERROR"], "a client leaving is not a server error"
