"""/metrics after known traffic: exact counts, bounded label sets, stream histograms, timing headers."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.anyio
OPENAI = "https://api.openai.com/v1"
ANSWER = {
    "id": "c",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}


async def samples(client) -> dict[tuple[str, frozenset], float]:
    text = (await client.get("/metrics")).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def delta(after, before, name, **labels):
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def label_sets(snapshot, name):
    return [dict(labels) for (n, labels) in snapshot if n == name]


async def test_known_traffic_gives_exact_counts(app_client, respx_mock, sse_fixture):
    chat = respx_mock.post(f"{OPENAI}/chat/completions")
    before = await samples(app_client)
    chat.mock(return_value=httpx.Response(200, json=ANSWER))
    for _ in range(3):
        await app_client.post(
            "/v1/chat/completions", json={"model": "chat", "messages": [{"role": "user", "content": "x"}]}
        )
    chat.mock(
        return_value=httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse_fixture("openai_chat_stream.txt")
        )
    )
    await app_client.post(
        "/v1/chat/completions", json={"model": "chat", "messages": [{"role": "user", "content": "x"}], "stream": True}
    )
    chat.mock(return_value=httpx.Response(500))
    await app_client.post(
        "/v1/chat/completions", json={"model": "chat", "messages": [{"role": "user", "content": "x"}]}
    )
    await app_client.post(
        "/v1/chat/completions", json={"model": "nobody", "messages": [{"role": "user", "content": "x"}]}
    )
    after = await samples(app_client)

    route = "/v1/chat/completions"
    assert delta(after, before, "gateway_requests_total", endpoint="chat", route=route, status_class="2xx") == 4
    assert delta(after, before, "gateway_requests_total", endpoint="chat", route=route, status_class="5xx") == 1
    assert delta(after, before, "gateway_requests_total", endpoint="(unknown)", route=route, status_class="4xx") == 1
    assert delta(after, before, "gateway_upstream_errors_total", endpoint="chat", kind="unavailable") == 1
    assert delta(after, before, "gateway_overhead_seconds_count", endpoint="chat", route=route) == 5
    assert delta(after, before, "gateway_upstream_duration_seconds_count", endpoint="chat", provider="openai") == 5
    assert after[("gateway_in_flight_requests", frozenset({("route", route)}))] == 0

    genai = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "openai",
        "gen_ai_request_model": "gpt-4o-mini",
        "gen_ai_response_model": "gpt-4o-mini-2024-07-18",
        "endpoint": "chat",
    }
    assert delta(after, before, "gen_ai_server_request_duration_seconds_count", **genai) == 4
    assert delta(after, before, "gen_ai_client_token_usage_sum", **genai, gen_ai_token_type="input") == 3 * 9 + 9
    assert delta(after, before, "gen_ai_client_token_usage_sum", **genai, gen_ai_token_type="output") == 3 * 2 + 3
    # Only the stream has a time to first token and a time per output token.
    assert delta(after, before, "gen_ai_server_time_to_first_token_seconds_count", **genai) == 1
    assert delta(after, before, "gen_ai_server_time_per_output_token_seconds_count", **genai) == 1

    # Label sets are bounded: configured names and the upstream's model only.
    endpoints = {labels["endpoint"] for labels in label_sets(after, "gateway_requests_total")}
    assert "nobody" not in endpoints and "(unknown)" in endpoints
    assert {tuple(sorted(labels)) for labels in label_sets(after, "gen_ai_client_token_usage_count")} == {
        tuple(sorted([*genai, "gen_ai_token_type"]))
    }


async def test_timing_and_request_id_headers(app_client, respx_mock, sse_fixture):
    chat = respx_mock.post(f"{OPENAI}/chat/completions").mock(return_value=httpx.Response(200, json=ANSWER))
    r = await app_client.post(
        "/v1/chat/completions",
        json={"model": "chat", "messages": [{"role": "user", "content": "x"}]},
        headers={"x-request-id": "client-id-1"},
    )
    assert r.headers["x-request-id"] == "client-id-1"
    assert r.headers["server-timing"].startswith("gateway;dur=") and ", upstream;dur=" in r.headers["server-timing"]
    assert float(r.headers["x-gateway-overhead-ms"]) >= 0
    chat.mock(
        return_value=httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse_fixture("openai_chat_stream.txt")
        )
    )
    r = await app_client.post(
        "/v1/chat/completions", json={"model": "chat", "messages": [{"role": "user", "content": "x"}], "stream": True}
    )
    assert len(r.headers["x-request-id"]) == 32 and "server-timing" in r.headers
    r = await app_client.post("/v1/chat/completions", json={"model": "nobody", "messages": []})
    assert r.status_code == 404 and "x-request-id" in r.headers, "errors carry the request id too"


async def test_tracking_and_build_metrics_are_exported(app_client, respx_mock):
    respx_mock.post(f"{OPENAI}/chat/completions").mock(return_value=httpx.Response(200, json=ANSWER))
    await app_client.post(
        "/v1/chat/completions", json={"model": "chat", "messages": [{"role": "user", "content": "x"}]}
    )
    await app_client.app.state.writer.flush()
    text = (await app_client.get("/metrics")).text
    for name in (
        "gateway_tracking_written_total",
        "gateway_tracking_queue_depth",
        "gateway_build_info",
        "gateway_config_info",
    ):
        assert name in text
