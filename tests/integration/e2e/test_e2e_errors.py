"""Every error status through the real server, each naming the field or the cause."""

from __future__ import annotations

import json
import re
import time

import httpx
import openai
import pytest

from tests.integration.e2e.conftest import UNSET_VAR
from tests.integration.e2e.e2e_upstream import ANTHROPIC_KEY, OPENAI_KEY, MockUpstream

TIMEOUT = re.compile(r"timed out|timeout")  # the message names the cause


def chat(prompt: str, model: str = "chat", **extra: object) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], **extra}


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


def sse_events(response: httpx.Response) -> list[str]:
    return [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]


# ---- 400 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (chat("hi", temperature=5), "temperature"),
        ({"model": "chat"}, "messages"),
        ({"model": "chat", "messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
    ],
)
def test_invalid_body_is_400_naming_the_field(http: httpx.Client, body: dict, field: str) -> None:
    response = http.post("/v1/chat/completions", json=body)

    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == field
    assert error["message"].startswith(f"{field}:")


def test_non_json_body_is_400(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert error_of(response)["param"] == "body"
    assert "invalid JSON" in error_of(response)["message"]


def test_sdk_sees_400_as_bad_request(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}], top_p=3)
    assert info.value.status_code == 400
    assert "top_p" in info.value.message


def test_anthropic_unsupported_parameter_is_400(http: httpx.Client, upstream: MockUpstream, token: str) -> None:
    response = http.post("/v1/chat/completions", json=chat(token, "claude", seed=7))

    assert response.status_code == 400
    assert error_of(response)["param"] == "seed"
    assert "anthropic" in error_of(response)["message"]
    assert upstream.received(token) == []


# ---- 404 ----------------------------------------------------------------------------------------


def test_unknown_endpoint_is_404(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=chat("hi", "no-such-endpoint"))

    assert response.status_code == 404
    error = error_of(response)
    assert error["type"] == "not_found_error"
    assert "'no-such-endpoint' is not configured" in error["message"]
    assert error["param"] == "model"


def test_wrong_endpoint_type_is_404(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=chat("hi", "embeddings"))

    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "wrong_endpoint_type"
    assert "llm/v1/embeddings" in error["message"] and "llm/v1/chat" in error["message"]


def test_sdk_sees_404_as_not_found(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="not configured"):
        oai.embeddings.create(model="nope", input="x")


def test_unknown_endpoint_on_mlflow_route_is_404_with_detail(http: httpx.Client) -> None:
    response = http.post("/endpoints/nope/invocations", json={"messages": [{"role": "user", "content": "hi"}]})

    assert response.status_code == 404
    assert "'nope' is not configured" in response.json()["detail"]


def test_unknown_path_is_404(http: httpx.Client) -> None:
    response = http.get("/v1/nothing-here")

    assert response.status_code == 404
    assert "/v1/nothing-here" in error_of(response)["message"]


# ---- 413 ----------------------------------------------------------------------------------------


def test_body_over_the_limit_is_413(http: httpx.Client, upstream: MockUpstream, token: str) -> None:
    response = http.post("/v1/chat/completions", json=chat(token + "x" * 70_000))

    assert response.status_code == 413
    assert "65536" in error_of(response)["message"]
    assert upstream.received(token) == []


def test_chunked_body_over_the_limit_is_413(http: httpx.Client) -> None:
    def body():  # no Content-Length: the gateway must count as it reads
        yield b'{"model": "chat", "messages": [{"role": "user", "content": "'
        for _ in range(20):
            yield b"y" * 8192
        yield b'"}]}'

    response = http.post("/v1/chat/completions", content=body(), headers={"content-type": "application/json"})

    assert response.status_code == 413
    assert "65536" in error_of(response)["message"]


# ---- 429 ----------------------------------------------------------------------------------------


def test_endpoint_limit_is_429_with_retry_after(http: httpx.Client, upstream: MockUpstream, token: str) -> None:
    for i in range(2):
        assert http.post("/v1/chat/completions", json=chat(f"{token} {i}", "limited")).status_code == 200

    response = http.post("/v1/chat/completions", json=chat(f"{token} 3", "limited"))

    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    error = error_of(response)
    assert error["type"] == "rate_limit_error"
    assert "'limited'" in error["message"] and "2 calls per minute" in error["message"]
    assert len(upstream.received(token)) == 2
    # The limit is the endpoint's, whatever the route: MLflow's invocation path is limited too.
    mlflow = http.post("/endpoints/limited/invocations", json={"messages": [{"role": "user", "content": "hi"}]})
    assert mlflow.status_code == 429
    assert "retry-after" in mlflow.headers
    assert "rate limited" in mlflow.json()["detail"]


def test_upstream_429_passes_through_with_retry_after(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        oai.chat.completions.create(model="chat", messages=[{"role": "user", "content": "MOCK:error429"}])

    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "7"
    assert "Rate limit reached" in info.value.message


# ---- 401 / other upstream 4xx passed through ------------------------------------------------------


def test_upstream_401_passes_through_with_the_key_cleaned(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=chat("MOCK:error401"))

    assert response.status_code == 401
    error = error_of(response)
    assert "Incorrect API key provided" in error["message"]
    assert "[REDACTED]" in error["message"]
    assert OPENAI_KEY not in response.text and "SECRET" not in response.text


def test_anthropic_upstream_401_passes_through_with_the_key_cleaned(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=chat("MOCK:error401", "claude"))

    assert response.status_code == 401
    assert "[REDACTED]" in error_of(response)["message"]
    assert ANTHROPIC_KEY not in response.text and "SECRET" not in response.text


# ---- 502 ----------------------------------------------------------------------------------------


def test_upstream_500_is_502(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=chat("MOCK:error500"))

    assert response.status_code == 502
    error = error_of(response)
    assert error["type"] == "upstream_error"
    assert "answered 500" in error["message"] and "The server had an error" in error["message"]


def test_upstream_non_json_body_is_502(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=chat("MOCK:garbage"))

    assert response.status_code == 502
    assert "not JSON" in error_of(response)["message"]


def test_upstream_non_sse_answer_to_a_stream_is_502(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=chat("MOCK:garbage", stream=True))

    assert response.status_code == 502
    assert "text/html" in error_of(response)["message"]


def test_anthropic_upstream_non_json_body_is_502(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=chat("MOCK:garbage", "claude"))

    assert response.status_code == 502
    assert "anthropic" in error_of(response)["message"]


def test_connection_refused_is_502(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=chat("hi", "refused"))

    assert response.status_code == 502
    assert "connection failed" in error_of(response)["message"]


def test_connection_refused_on_a_stream_is_502(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=chat("hi", "refused", stream=True))

    assert response.status_code == 502
    assert "connection failed" in error_of(response)["message"]


def test_upstream_failure_on_mlflow_route_is_502_with_detail(http: httpx.Client) -> None:
    response = http.post(
        "/endpoints/chat/invocations", json={"messages": [{"role": "user", "content": "MOCK:error500"}]}
    )

    assert response.status_code == 502
    assert "answered 500" in response.json()["detail"]


# ---- 504 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_hang_is_504_after_the_total_timeout(http: httpx.Client, stream: bool) -> None:
    start = time.monotonic()
    response = http.post("/v1/chat/completions", json=chat("MOCK:hang", "impatient", stream=stream))
    elapsed = time.monotonic() - start

    assert response.status_code == 504
    assert TIMEOUT.search(error_of(response)["message"])
    assert 0.9 <= elapsed < 3.0


# ---- 503 ----------------------------------------------------------------------------------------


def test_missing_credential_is_503_naming_the_variable(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=chat("hi", "nokey"))

    assert response.status_code == 503
    error = error_of(response)
    assert UNSET_VAR in error["message"]
    assert "'nokey'" in error["message"]


def test_health_reports_the_unavailable_endpoint(http: httpx.Client) -> None:
    body = http.get("/health").json()

    assert body["status"] == "OK"
    assert body["endpoints"]["chat"] == {"available": True}
    assert body["endpoints"]["nokey"]["available"] is False
    assert UNSET_VAR in body["endpoints"]["nokey"]["reason"]


# ---- in-band errors once the stream has started ------------------------------------------------------


def _assert_ends_with_inband_error(events: list[str]) -> dict:
    assert len(events) >= 2, events
    first = json.loads(events[0])
    assert first["choices"], "the stream should start normally"
    last = json.loads(events[-1])  # no [DONE] after the error: the error ends the stream
    assert set(last) == {"error"}, last
    assert "[DONE]" not in events
    return last["error"]


def test_upstream_cut_mid_stream_arrives_in_band(http: httpx.Client) -> None:
    with http.stream("POST", "/v1/chat/completions", json=chat("MOCK:cut", stream=True)) as response:
        assert response.status_code == 200
        events = sse_events(response)

    error = _assert_ends_with_inband_error(events)
    assert error["type"] == "upstream_error"
    assert "openai" in error["message"]


def test_anthropic_cut_mid_stream_arrives_in_band(http: httpx.Client) -> None:
    with http.stream("POST", "/v1/chat/completions", json=chat("MOCK:cut", "claude", stream=True)) as response:
        assert response.status_code == 200
        events = sse_events(response)

    error = _assert_ends_with_inband_error(events)
    assert error["type"] == "upstream_error"


def test_upstream_error_event_mid_stream_arrives_in_band(http: httpx.Client) -> None:
    with http.stream("POST", "/v1/chat/completions", json=chat("MOCK:streamerror", stream=True)) as response:
        assert response.status_code == 200
        events = sse_events(response)

    error = _assert_ends_with_inband_error(events)
    assert "overloaded" in error["message"]


def test_sdk_raises_on_an_in_band_error(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "MOCK:streamerror"}], stream=True
    )
    with pytest.raises(openai.APIError, match="overloaded"):
        for _ in stream:
            pass


def test_anthropic_error_event_mid_stream_arrives_in_band(http: httpx.Client) -> None:
    with http.stream("POST", "/v1/chat/completions", json=chat("MOCK:streamerror", "claude", stream=True)) as response:
        assert response.status_code == 200
        events = sse_events(response)

    error = _assert_ends_with_inband_error(events)
    assert "Overloaded" in error["message"]


def test_upstream_stalling_mid_stream_times_out_in_band(http: httpx.Client) -> None:
    start = time.monotonic()
    with http.stream("POST", "/v1/chat/completions", json=chat("MOCK:stall", "impatient", stream=True)) as response:
        assert response.status_code == 200
        events = sse_events(response)
    elapsed = time.monotonic() - start

    error = _assert_ends_with_inband_error(events)
    assert error["type"] == "timeout_error"
    assert TIMEOUT.search(error["message"])
    assert elapsed < 3.0


# ---- errors before the first byte of a stream keep their status -------------------------------------


@pytest.mark.parametrize("model", ["chat", "claude"])
def test_upstream_401_on_a_stream_is_a_401_not_a_200(http: httpx.Client, model: str) -> None:
    response = http.post("/v1/chat/completions", json=chat("MOCK:error401", model, stream=True))

    assert response.status_code == 401
    assert "[REDACTED]" in error_of(response)["message"]


@pytest.mark.parametrize("model", ["chat", "claude"])
def test_upstream_429_on_a_stream_keeps_retry_after(http: httpx.Client, model: str) -> None:
    response = http.post("/v1/chat/completions", json=chat("MOCK:error429", model, stream=True))

    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"


def test_missing_credential_on_a_stream_is_503(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=chat("hi", "nokey", stream=True))

    assert response.status_code == 503
    assert UNSET_VAR in error_of(response)["message"]


# ---- more garbage and more routes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", chat("MOCK:malformed")),
        ("/v1/chat/completions", chat("MOCK:malformed", "claude")),
        ("/v1/completions", {"model": "completions", "prompt": "MOCK:malformed"}),
        ("/v1/embeddings", {"model": "embeddings", "input": "MOCK:malformed"}),
    ],
)
def test_upstream_malformed_json_is_502(http: httpx.Client, path: str, body: dict) -> None:
    response = http.post(path, json=body)

    assert response.status_code == 502
    assert "malformed" in error_of(response)["message"]


def test_upstream_500_echoing_the_key_is_cleaned(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=chat("MOCK:error500"))

    assert response.status_code == 502
    assert "[REDACTED]" in error_of(response)["message"]
    assert OPENAI_KEY not in response.text


def test_streaming_embeddings_is_400(http: httpx.Client) -> None:
    response = http.post("/v1/embeddings", json={"model": "embeddings", "input": "x", "stream": True})

    assert response.status_code == 400
    assert error_of(response)["param"] == "stream"


def test_body_over_the_limit_on_mlflow_route_is_413_with_detail(http: httpx.Client) -> None:
    body = {"messages": [{"role": "user", "content": "x" * 70_000}]}
    response = http.post("/gateway/chat/invocations", json=body)

    assert response.status_code == 413
    assert "65536" in response.json()["detail"]


def test_upstream_timeout_on_mlflow_route_is_504_with_detail(http: httpx.Client) -> None:
    response = http.post(
        "/endpoints/impatient/invocations", json={"messages": [{"role": "user", "content": "MOCK:hang"}]}
    )

    assert response.status_code == 504
    assert TIMEOUT.search(response.json()["detail"])
