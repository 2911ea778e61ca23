"""Routing policies through the ASGI app: retries, fallbacks, circuit breaking, traffic split."""

from __future__ import annotations

import collections

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import build_app
from tests.helpers import make_config
from tracking.sink import MemorySink

pytestmark = pytest.mark.anyio
PRIMARY = "https://primary.example/v1/chat/completions"
BACKUP = "https://backup.example/v1/chat/completions"
CONFIG = """
endpoints:
  - name: primary
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: p-model, config: {openai_api_key: k1, openai_api_base: "https://primary.example/v1"}}
    retries: {attempts: 2, backoff: 0, max_backoff: 1}
    fallbacks: [backup]
  - name: backup
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: b-model, config: {openai_api_key: k2, openai_api_base: "https://backup.example/v1"}}
  - name: no-retry
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: p-model, config: {openai_api_key: k1, openai_api_base: "https://primary.example/v1"}}
  - name: fragile
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: p-model, config: {openai_api_key: k1, openai_api_base: "https://primary.example/v1"}}
    circuit_breaker: {failures: 2, cooldown: 60}
    fallbacks: [backup]
  - name: budget
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: p-model, config: {openai_api_key: k1, openai_api_base: "https://primary.example/v1"}}
    token_limit: {tokens: 3, renewal_period: hour}
  - name: keyless
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: x, config: {openai_api_key: $UNSET_TEST_KEY}}
    fallbacks: [backup]
  - name: weighted
    endpoint_type: llm/v1/chat
    models:
      - {provider: openai, name: p-model, weight: 3, config: {openai_api_key: k1, openai_api_base: "https://primary.example/v1"}}
      - {provider: openai, name: b-model, weight: 1, config: {openai_api_key: k2, openai_api_base: "https://backup.example/v1"}}
    circuit_breaker: {failures: 1, cooldown: 60}
  - name: half-keyless
    endpoint_type: llm/v1/chat
    models:
      - {provider: openai, name: x, config: {openai_api_key: $UNSET_TEST_KEY}}
      - {provider: openai, name: b-model, config: {openai_api_key: k2, openai_api_base: "https://backup.example/v1"}}
routes:
  - name: split
    task_type: llm/v1/chat
    destinations:
      - {name: no-retry, traffic_percentage: 70}
      - {name: backup, traffic_percentage: 30}
"""


def answer(model: str) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": model}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        },
    )


def body(model: str, **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


@pytest.fixture
async def client():
    sink = MemorySink()
    app = build_app(make_config(CONFIG), sink=sink, transport="httpx")
    async with LifespanManager(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://gw") as c:
            c.sink = sink
            c.app = app
            yield c


async def records(client):
    await client.app.state.writer.flush()
    return client.sink.records


async def test_retries_a_5xx_then_succeeds(client, respx_mock):
    route = respx_mock.post(PRIMARY).mock(side_effect=[httpx.Response(500), httpx.Response(502), answer("p")])
    r = await client.post("/v1/chat/completions", json=body("primary"))
    assert r.status_code == 200 and r.json()["model"] == "p"
    assert route.call_count == 3
    assert r.headers["x-gateway-endpoint"] == "primary" and r.headers["x-gateway-attempts"] == "3"
    (rec,) = await records(client)
    assert (rec.retries, rec.fallback, rec.status) == (2, None, 200)


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_never_retries_client_errors(client, respx_mock, status):
    route = respx_mock.post(PRIMARY).mock(return_value=httpx.Response(status, json={"error": {"message": "no"}}))
    backup = respx_mock.post(BACKUP).mock(return_value=answer("b"))
    r = await client.post("/v1/chat/completions", json=body("primary"))
    assert r.status_code == status and route.call_count == 1 and backup.call_count == 0


async def test_honours_retry_after_within_max_backoff(client, respx_mock):
    route = respx_mock.post(PRIMARY).mock(side_effect=[httpx.Response(429, headers={"retry-after": "0"}), answer("p")])
    r = await client.post("/v1/chat/completions", json=body("primary"))
    assert r.status_code == 200 and route.call_count == 2


async def test_retry_after_longer_than_max_backoff_goes_to_the_fallback(client, respx_mock):
    route = respx_mock.post(PRIMARY).mock(return_value=httpx.Response(429, headers={"retry-after": "30"}))
    respx_mock.post(BACKUP).mock(return_value=answer("b"))
    r = await client.post("/v1/chat/completions", json=body("primary"))
    assert route.call_count == 1, "a 30 s Retry-After is not waited for"
    assert r.status_code == 200 and r.headers["x-gateway-endpoint"] == "backup"


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(503), httpx.ConnectError("refused"), httpx.ReadTimeout("slow")],
    ids=["503", "connection-refused", "timeout"],
)
async def test_falls_back_after_retries(client, respx_mock, failure):
    primary = respx_mock.post(PRIMARY)
    if isinstance(failure, Exception):
        primary.side_effect = failure
    else:
        primary.return_value = failure
    backup = respx_mock.post(BACKUP).mock(return_value=answer("b"))
    r = await client.post("/v1/chat/completions", json=body("primary"))
    assert r.status_code == 200 and r.json()["model"] == "b"
    assert primary.call_count == 3 and backup.call_count == 1
    assert r.headers["x-gateway-endpoint"] == "backup"
    (rec,) = await records(client)
    assert (rec.endpoint, rec.fallback, rec.retries) == ("primary", "backup", 3)


async def test_when_everything_fails_the_last_error_is_returned(client, respx_mock):
    respx_mock.post(PRIMARY).mock(return_value=httpx.Response(500))
    respx_mock.post(BACKUP).mock(side_effect=httpx.ReadTimeout("slow"))
    r = await client.post("/v1/chat/completions", json=body("primary"))
    assert r.status_code == 504


async def test_unavailable_endpoint_falls_back(client, respx_mock):
    respx_mock.post(BACKUP).mock(return_value=answer("b"))
    r = await client.post("/v1/chat/completions", json=body("keyless"))
    assert r.status_code == 200 and r.headers["x-gateway-endpoint"] == "backup"


async def test_stream_falls_back_before_the_first_chunk(client, respx_mock, sse_fixture):
    respx_mock.post(PRIMARY).mock(return_value=httpx.Response(500))
    respx_mock.post(BACKUP).mock(
        return_value=httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse_fixture("openai_chat_stream.txt")
        )
    )
    r = await client.post("/v1/chat/completions", json=body("primary", stream=True))
    assert r.status_code == 200 and r.headers["x-gateway-endpoint"] == "backup"
    assert r.text.endswith("data: [DONE]\n\n") and '"Hello"' in r.text


async def test_circuit_opens_after_consecutive_failures(client, respx_mock):
    primary = respx_mock.post(PRIMARY).mock(return_value=httpx.Response(500))
    respx_mock.post(BACKUP).mock(return_value=answer("b"))
    for _ in range(4):
        r = await client.post("/v1/chat/completions", json=body("fragile"))
        assert r.status_code == 200 and r.headers["x-gateway-endpoint"] == "backup"
    assert primary.call_count == 2, "after 2 failures the circuit is open and the primary is skipped"


async def test_traffic_split_lands_within_tolerance(client, respx_mock):
    respx_mock.post(PRIMARY).mock(return_value=answer("p"))
    respx_mock.post(BACKUP).mock(return_value=answer("b"))
    served = collections.Counter()
    for _ in range(1000):
        r = await client.post("/v1/chat/completions", json=body("split"))
        assert r.status_code == 200
        served[r.headers["x-gateway-endpoint"]] += 1
    # 70/30 over 1000 calls: sd = sqrt(1000 * 0.7 * 0.3) ~ 14.5; 5 sd either side.
    assert abs(served["no-retry"] - 700) <= 73 and served["no-retry"] + served["backup"] == 1000


async def test_traffic_split_route_on_mlflow_invocations_and_health(client, respx_mock):
    respx_mock.post(PRIMARY).mock(return_value=answer("p"))
    respx_mock.post(BACKUP).mock(return_value=answer("b"))
    r = await client.post("/gateway/split/invocations", json={"messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200 and r.headers["x-gateway-endpoint"] in {"no-retry", "backup"}
    assert (await client.get("/health")).json()["routes"] == {"split": ["no-retry", "backup"]}


async def test_token_limit_counts_usage_from_responses_and_streams(client, respx_mock, sse_fixture):
    route = respx_mock.post(PRIMARY)
    route.return_value = answer("p")  # usage: 2 tokens
    assert (await client.post("/v1/chat/completions", json=body("budget"))).status_code == 200
    route.return_value = httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=sse_fixture("openai_chat_stream.txt")
    )  # usage: 12 tokens, counted when the stream ends
    assert (await client.post("/v1/chat/completions", json=body("budget", stream=True))).status_code == 200
    r = await client.post("/v1/chat/completions", json=body("budget"))
    assert r.status_code == 429 and "3 tokens per hour" in r.json()["error"]["message"]
    assert int(r.headers["retry-after"]) >= 1


async def test_weighted_models_inside_one_endpoint(client, respx_mock):
    primary = respx_mock.post(PRIMARY).mock(return_value=answer("p"))
    backup = respx_mock.post(BACKUP).mock(return_value=answer("b"))
    for _ in range(400):
        assert (await client.post("/v1/chat/completions", json=body("weighted"))).status_code == 200
    # 3:1 over 400 calls: sd = sqrt(400 * 0.75 * 0.25) ~ 8.7; 5 sd either side.
    assert abs(primary.call_count - 300) <= 44 and primary.call_count + backup.call_count == 400
    sent_models = {orjson.loads(c.request.content)["model"] for c in backup.calls}
    assert sent_models == {"b-model"}, "each model's own name goes upstream"
    recs = await records(client)
    assert {(r.endpoint, r.model) for r in recs} == {("weighted", "p-model"), ("weighted", "b-model")}
    health = (await client.get("/health")).json()["endpoints"]["weighted"]
    assert [m["weight"] for m in health["models"]] == [3, 1] and health["available"] is True
    # MLflow's listing shows the first model, as its clients expect one.
    ep = (await client.get("/api/2.0/endpoints/weighted")).json()
    assert ep["model"] == {"name": "p-model", "provider": "openai"}


async def test_a_failing_model_is_skipped_by_its_own_breaker(client, respx_mock):
    primary = respx_mock.post(PRIMARY).mock(return_value=httpx.Response(500))
    backup = respx_mock.post(BACKUP).mock(return_value=answer("b"))
    statuses = [(await client.post("/v1/chat/completions", json=body("weighted"))).status_code for _ in range(40)]
    assert primary.call_count == 1, "one failure opens that model's circuit"
    assert statuses.count(502) == 1 and backup.call_count == 39


async def test_models_without_credentials_are_left_out(client, respx_mock):
    backup = respx_mock.post(BACKUP).mock(return_value=answer("b"))
    for _ in range(5):
        assert (await client.post("/v1/chat/completions", json=body("half-keyless"))).status_code == 200
    assert backup.call_count == 5
    health = (await client.get("/health")).json()["endpoints"]["half-keyless"]
    assert health["available"] is True and "UNSET_TEST_KEY" in health["models"][0]["reason"]
