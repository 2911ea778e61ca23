"""MLflow's deployments client, unchanged, against the real gateway; plus the legacy routes via httpx."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from mlflow.deployments import get_deploy_client
from requests.exceptions import HTTPError

from tests.integration.e2e.conftest import Gateway, Transcript
from tests.integration.e2e.e2e_upstream import MockUpstream


@pytest.fixture
def mlflow_client(gateway: Gateway, monkeypatch: pytest.MonkeyPatch):
    # MLflow retries 429/5xx with backoff by default; a test must see the first answer.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    monkeypatch.setenv("MLFLOW_DEPLOYMENT_PREDICT_TIMEOUT", "10")
    return get_deploy_client(gateway.url)


@pytest.fixture
def record(transcript: Transcript) -> Iterator[object]:
    """MLflow's client uses requests, not httpx: record what it returns by hand."""

    def add(value: object) -> object:
        transcript.add(json.dumps(value, default=str))
        return value

    yield add


def test_list_endpoints(mlflow_client, record) -> None:
    endpoints = {e.name: e for e in mlflow_client.list_endpoints()}
    record([e.model_dump() for e in endpoints.values()])

    assert {"chat", "completions", "embeddings", "claude", "claude-completions", "limited", "nokey"} <= set(endpoints)
    chat = endpoints["chat"]
    assert chat.endpoint_type == "llm/v1/chat"
    assert chat.model.name == "gpt-4o-mini" and chat.model.provider == "openai"
    assert chat.endpoint_url.endswith("/gateway/chat/invocations")
    assert endpoints["limited"].limit is not None
    assert endpoints["limited"].limit.calls == 2 and endpoints["limited"].limit.renewal_period == "minute"
    assert endpoints["claude"].model.provider == "anthropic"


def test_get_endpoint(mlflow_client, record) -> None:
    endpoint = mlflow_client.get_endpoint("embeddings")
    record(endpoint.model_dump())

    assert endpoint.name == "embeddings"
    assert endpoint.endpoint_type == "llm/v1/embeddings"
    assert endpoint.model.name == "text-embedding-3-small"


def test_get_unknown_endpoint_fails(mlflow_client) -> None:
    with pytest.raises(HTTPError, match="not configured") as info:
        mlflow_client.get_endpoint("no-such-endpoint")
    assert info.value.response.status_code == 404


def test_predict_chat(mlflow_client, record, upstream: MockUpstream, token: str) -> None:
    reply = record(
        mlflow_client.predict(
            endpoint="chat", inputs={"messages": [{"role": "user", "content": f"hi {token}"}], "temperature": 0.1}
        )
    )

    assert reply["choices"][0]["message"]["content"] == f"Echo: hi {token}"
    assert reply["usage"]["total_tokens"] == 14
    [sent] = upstream.received(token)
    assert sent.body["model"] == "gpt-4o-mini" and sent.body["temperature"] == 0.1


def test_predict_chat_on_anthropic(mlflow_client, record, upstream: MockUpstream, token: str) -> None:
    reply = record(
        mlflow_client.predict(
            endpoint="claude",
            inputs={"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": token}]},
        )
    )

    assert reply["choices"][0]["message"]["content"] == f"Echo: {token}"
    [sent] = upstream.received(token)
    assert sent.body["system"] == "Be brief."


def test_predict_completions(mlflow_client, record, token: str) -> None:
    reply = record(mlflow_client.predict(endpoint="completions", inputs={"prompt": f"go {token}", "max_tokens": 5}))

    assert reply["object"] == "text_completion"
    assert reply["choices"][0]["text"] == f"Echo: go {token}"


def test_predict_embeddings(mlflow_client, record, token: str) -> None:
    reply = record(mlflow_client.predict(endpoint="embeddings", inputs={"input": [token, "xy"]}))

    assert [d["embedding"] for d in reply["data"]] == [[float(len(token)), 0.0, 0.5], [2.0, 1.0, 0.5]]


def test_predict_refuses_a_model_field_with_mlflows_message(mlflow_client) -> None:
    with pytest.raises(HTTPError, match="The parameter 'model' is not permitted") as info:
        mlflow_client.predict(endpoint="chat", inputs={"model": "x", "messages": [{"role": "user", "content": "hi"}]})
    assert info.value.response.status_code == 422


def test_legacy_gateway_invocations(http: httpx.Client, token: str) -> None:
    response = http.post("/gateway/completions/invocations", json={"prompt": f"legacy {token}"})

    assert response.status_code == 200
    assert response.json()["choices"][0]["text"] == f"Echo: legacy {token}"


def test_legacy_invocation_streams(http: httpx.Client, token: str) -> None:
    body = {"messages": [{"role": "user", "content": f"s {token}"}], "stream": True}
    with http.stream("POST", "/gateway/chat/invocations", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]

    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert text == f"Echo: s {token}"


def test_legacy_routes(http: httpx.Client) -> None:
    listing = http.get("/api/2.0/gateway/routes/")
    assert listing.status_code == 200
    routes = {r["name"]: r for r in listing.json()["routes"]}
    assert routes["claude"]["route_type"] == "llm/v1/chat"
    assert routes["claude"]["route_url"] == "/gateway/claude/invocations"
    assert routes["claude"]["model"] == {"name": "claude-sonnet-4-5", "provider": "anthropic"}

    one = http.get("/api/2.0/gateway/routes/embeddings")
    assert one.status_code == 200
    assert one.json()["route_type"] == "llm/v1/embeddings"

    missing = http.get("/api/2.0/gateway/routes/nope")
    assert missing.status_code == 404
    assert "nope" in missing.json()["detail"]


def test_endpoints_listing_shape(http: httpx.Client) -> None:
    body = http.get("/api/2.0/endpoints/").json()

    assert body["next_page_token"] is None
    chat = next(e for e in body["endpoints"] if e["name"] == "chat")
    assert chat == {
        "name": "chat",
        "endpoint_type": "llm/v1/chat",
        "model": {"name": "gpt-4o-mini", "provider": "openai"},
        "endpoint_url": "/gateway/chat/invocations",
        "limit": None,
    }


def test_mlflow_route_invalid_body_is_422(http: httpx.Client) -> None:
    response = http.post("/endpoints/chat/invocations", json={"messages": []})

    assert response.status_code == 422
    assert "messages" in response.json()["detail"]
