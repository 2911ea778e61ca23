"""The MLflow deployments-server API through the ASGI app: shapes MLflow's clients rely on."""

from __future__ import annotations

import base64

import httpx
import orjson
import pytest

from gateway.routes import mlflow as mlflow_routes

pytestmark = pytest.mark.anyio
OPENAI = "https://api.openai.com/v1"
OK = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


async def test_list_endpoints_has_mlflow_shape(app_client):
    r = await app_client.get("/api/2.0/endpoints/")
    assert r.status_code == 200
    body = r.json()
    assert body["next_page_token"] is None
    first = body["endpoints"][0]
    assert first == {
        "name": "chat",
        "endpoint_type": "llm/v1/chat",
        "model": {"name": "gpt-4o-mini", "provider": "openai"},
        "endpoint_url": "/gateway/chat/invocations",
        "limit": None,
    }
    limited = next(e for e in body["endpoints"] if e["name"] == "limited")
    assert limited["limit"] == {"calls": 2, "key": None, "renewal_period": "minute"}


async def test_list_endpoints_pages(app_client, monkeypatch):
    monkeypatch.setattr(mlflow_routes, "PAGE_SIZE", 3)
    names, token, pages = [], None, 0
    while True:
        params = {"page_token": token} if token else {}
        body = (await app_client.get("/api/2.0/endpoints/", params=params)).json()
        names += [e["name"] for e in body["endpoints"]]
        token, pages = body["next_page_token"], pages + 1
        if token is None:
            break
        assert orjson.loads(base64.b64decode(token)) == {"index": 3 * pages}  # MLflow's token format
    assert pages == 3 and len(names) == 8 and len(set(names)) == 8
    r = await app_client.get("/api/2.0/endpoints/", params={"page_token": "garbage!"})
    assert r.status_code == 422 and "page_token" in r.json()["detail"]


async def test_get_endpoint_and_404_in_mlflow_shape(app_client):
    r = await app_client.get("/api/2.0/endpoints/claude")
    assert r.json()["model"] == {"name": "claude-sonnet-4-5", "provider": "anthropic"}
    r = await app_client.get("/api/2.0/endpoints/missing")
    assert r.status_code == 404 and set(r.json()) == {"detail"} and "'missing'" in r.json()["detail"]


async def test_legacy_routes_api(app_client):
    body = (await app_client.get("/api/2.0/gateway/routes/")).json()
    assert body["routes"][0] == {
        "name": "chat",
        "route_type": "llm/v1/chat",
        "model": {"name": "gpt-4o-mini", "provider": "openai"},
        "route_url": "/gateway/chat/invocations",
        "limit": None,
    }
    assert (await app_client.get("/api/2.0/gateway/routes/embeddings")).json()["route_type"] == "llm/v1/embeddings"


@pytest.mark.parametrize("path", ["/endpoints/chat/invocations", "/gateway/chat/invocations"])
async def test_invocations_proxy_without_model(app_client, respx_mock, memory_sink, path):
    route = respx_mock.post(f"{OPENAI}/chat/completions").mock(return_value=httpx.Response(200, json=OK))
    r = await app_client.post(path, json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5})
    assert r.status_code == 200 and r.json() == OK
    assert orjson.loads(route.calls.last.request.content)["model"] == "gpt-4o-mini"
    await app_client.app.state.writer.flush()
    assert memory_sink.records[0].route == path.replace("chat", "{name}")


async def test_invocation_errors_keep_mlflow_shape(app_client, respx_mock):
    r = await app_client.post("/endpoints/chat/invocations", json={"model": "x", "messages": []})
    assert r.status_code == 422
    assert r.json() == {"detail": mlflow_routes.MODEL_FIELD_MESSAGE}
    r = await app_client.post("/endpoints/chat/invocations", json={"messages": [{"role": "user"}], "temperature": 5})
    assert r.status_code == 422 and r.json()["detail"].startswith("temperature")
    r = await app_client.post("/endpoints/nope/invocations", json={"messages": []})
    assert r.status_code == 404 and "'nope'" in r.json()["detail"]
    r = await app_client.post("/endpoints/keyless/invocations", json={"messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 503 and "UNSET_TEST_KEY" in r.json()["detail"]
    respx_mock.post(f"{OPENAI}/chat/completions").mock(side_effect=httpx.ReadTimeout("slow"))
    r = await app_client.post("/endpoints/chat/invocations", json={"messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 504 and "timed out" in r.json()["detail"]


async def test_embeddings_and_stream_invocations(app_client, respx_mock, sse_fixture):
    emb = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}],
        "model": "e",
        "usage": {},
    }
    respx_mock.post(f"{OPENAI}/embeddings").mock(return_value=httpx.Response(200, json=emb))
    r = await app_client.post("/endpoints/embeddings/invocations", json={"input": "hello"})
    assert r.status_code == 200 and r.json()["data"][0]["embedding"] == [0.5]
    respx_mock.post(f"{OPENAI}/chat/completions").mock(
        return_value=httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse_fixture("openai_chat_stream.txt")
        )
    )
    r = await app_client.post(
        "/endpoints/chat/invocations", json={"messages": [{"role": "user", "content": "x"}], "stream": True}
    )
    assert r.status_code == 200 and r.text.endswith("data: [DONE]\n\n") and '"Hello"' in r.text


async def test_health_reports_config_version_and_availability(app_client, config):
    body = (await app_client.get("/health")).json()
    assert body["status"] == "OK" and body["config_version"] == config.version
    assert body["endpoints"]["chat"] == {"available": True}
    assert body["endpoints"]["keyless"]["available"] is False
    assert "UNSET_TEST_KEY" in body["endpoints"]["keyless"]["reason"]


async def test_metrics_count_requests_by_endpoint_route_and_status(app_client, respx_mock):
    respx_mock.post(f"{OPENAI}/chat/completions").mock(return_value=httpx.Response(200, json=OK))

    def count(text: str, labels: str) -> float:
        for line in text.splitlines():
            if line.startswith("gateway_requests_total{") and labels in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    labels = 'endpoint="chat",route="/v1/chat/completions",status_class="2xx"'
    before = count((await app_client.get("/metrics")).text, labels)
    for _ in range(3):
        await app_client.post(
            "/v1/chat/completions", json={"model": "chat", "messages": [{"role": "user", "content": "x"}]}
        )
    text = (await app_client.get("/metrics")).text
    assert count(text, labels) == before + 3
    assert "gateway_request_duration_seconds_bucket{" in text and 'endpoint="chat"' in text


async def test_openapi_lists_every_route(app_client):
    spec = (await app_client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    for path in ("/v1/chat/completions", "/v1/embeddings", "/api/2.0/endpoints/", "/endpoints/{name}/invocations"):
        assert path in spec["paths"]
    schema = spec["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "messages" in schema["required"]
