"""The /v1 routes through the ASGI app, with upstreams mocked by respx."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.helpers import ANTHROPIC_KEY, OPENAI_KEY, flushed

pytestmark = pytest.mark.anyio
OPENAI = "https://api.openai.com/v1"
ANTHROPIC = "https://api.anthropic.com/v1"
CHAT_BODY = {"model": "chat", "messages": [{"role": "user", "content": "Hi"}]}
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}


def sse(content: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=content)


def events(body: bytes) -> list[dict | str]:
    out: list[dict | str] = []
    for block in body.decode().split("\n\n"):
        if block.startswith("data: "):
            data = block[6:]
            out.append(data if data == "[DONE]" else orjson.loads(data))
    return out


async def test_chat_passes_body_through_and_records_usage(app_client, respx_mock, memory_sink):
    route = respx_mock.post(f"{OPENAI}/chat/completions").mock(return_value=httpx.Response(200, json=COMPLETION))
    r = await app_client.post("/v1/chat/completions", json={**CHAT_BODY, "temperature": 0.3, "logit_bias": {"1": 2}})
    assert r.status_code == 200
    assert r.json() == COMPLETION
    sent = orjson.loads(route.calls.last.request.content)
    assert sent["model"] == "gpt-4o-mini"  # the endpoint's model, not the endpoint name
    assert sent["temperature"] == 0.3 and sent["logit_bias"] == {"1": 2}  # unknown params pass through
    assert route.calls.last.request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    await flushed(app_client)
    (record,) = memory_sink.records
    assert (record.endpoint, record.provider, record.status, record.stream) == ("chat", "openai", 200, False)
    assert (record.usage.prompt_tokens, record.usage.completion_tokens, record.usage.total_tokens) == (9, 2, 11)
    assert record.response == COMPLETION and record.request["messages"] == CHAT_BODY["messages"]
    assert record.route == "/v1/chat/completions" and record.latency_ms > 0


async def test_chat_stream_relays_chunks_and_hides_usage_chunk_not_asked_for(
    app_client, respx_mock, memory_sink, sse_fixture
):
    route = respx_mock.post(f"{OPENAI}/chat/completions").mock(return_value=sse(sse_fixture("openai_chat_stream.txt")))
    r = await app_client.post("/v1/chat/completions", json={**CHAT_BODY, "stream": True})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    got = events(r.content)
    assert got[-1] == "[DONE]"
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in got[:-1])
    assert text == "Hello, world"
    assert all(e["choices"] for e in got[:-1]), "the usage-only chunk was not asked for"
    sent = orjson.loads(route.calls.last.request.content)
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    await flushed(app_client)
    (record,) = memory_sink.records
    assert record.stream and record.status == 200 and record.usage.total_tokens == 12
    assert record.response["choices"][0]["message"]["content"] == "Hello, world"
    assert record.finish_reason == "stop" and record.ttft_ms is not None


async def test_chat_stream_with_include_usage_gets_the_usage_chunk(app_client, respx_mock, sse_fixture):
    respx_mock.post(f"{OPENAI}/chat/completions").mock(return_value=sse(sse_fixture("openai_chat_stream.txt")))
    body = {**CHAT_BODY, "stream": True, "stream_options": {"include_usage": True}}
    got = events((await app_client.post("/v1/chat/completions", json=body)).content)
    assert got[-2]["choices"] == [] and got[-2]["usage"]["total_tokens"] == 12


async def test_completions_and_embeddings(app_client, respx_mock):
    completion = {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "gpt-3.5-turbo-instruct",
        "choices": [{"index": 0, "text": "4", "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    embedding = {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2]} for i in range(2)],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    respx_mock.post(f"{OPENAI}/completions").mock(return_value=httpx.Response(200, json=completion))
    emb = respx_mock.post(f"{OPENAI}/embeddings").mock(return_value=httpx.Response(200, json=embedding))
    r = await app_client.post("/v1/completions", json={"model": "completions", "prompt": "2+2="})
    assert r.status_code == 200 and r.json()["choices"][0]["text"] == "4"
    r = await app_client.post("/v1/embeddings", json={"model": "embeddings", "input": ["a", "b"], "dimensions": 2})
    assert r.status_code == 200 and len(r.json()["data"]) == 2
    assert orjson.loads(emb.calls.last.request.content)["dimensions"] == 2


async def test_models_list_names_every_endpoint(app_client):
    r = await app_client.get("/v1/models")
    assert r.status_code == 200
    ids = [m["id"] for m in r.json()["data"]]
    assert ids[:3] == ["chat", "completions", "embeddings"] and "claude" in ids
    assert (await app_client.get("/v1/models/claude")).json()["owned_by"] == "anthropic"


# ---- Anthropic translation through the routes ---------------------------------------------------


async def test_anthropic_chat_translates_both_ways(app_client, respx_mock, memory_sink):
    answer = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Bonjour"}],
        "stop_reason": "max_tokens",
        "usage": {"input_tokens": 12, "output_tokens": 5},
    }
    route = respx_mock.post(f"{ANTHROPIC}/messages").mock(return_value=httpx.Response(200, json=answer))
    body = {
        "model": "claude",
        "messages": [{"role": "system", "content": "Be French."}, {"role": "user", "content": "Hello"}],
        "temperature": 1.0,
        "stop": "END",
    }
    r = await app_client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "chat.completion" and data["id"] == "msg_01"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "Bonjour"}
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"] == {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
    sent = route.calls.last.request
    payload = orjson.loads(sent.content)
    assert payload["system"] == "Be French."
    assert payload["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
    assert payload["max_tokens"] == 8192 and payload["temperature"] == 0.5 and payload["stop_sequences"] == ["END"]
    assert sent.headers["x-api-key"] == ANTHROPIC_KEY and sent.headers["anthropic-version"] == "2023-06-01"
    await flushed(app_client)
    assert memory_sink.records[0].usage.total_tokens == 17


async def test_anthropic_stream_becomes_openai_chunks(app_client, respx_mock, sse_fixture, memory_sink):
    respx_mock.post(f"{ANTHROPIC}/messages").mock(return_value=sse(sse_fixture("anthropic_chat_stream.txt")))
    body = {"model": "claude", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    body["stream_options"] = {"include_usage": True}
    got = events((await app_client.post("/v1/chat/completions", json=body)).content)
    assert got[-1] == "[DONE]"
    chunks = got[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "msg_01" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello, world"
    calls = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls") or ()]
    assert calls[0] == {
        "index": 0,
        "id": "toolu_01",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert "".join(tc["function"]["arguments"] for tc in calls) == '{"city": "Paris"}'
    assert all("type" not in tc for tc in calls[1:]), "type is sent once, like OpenAI"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {
        "prompt_tokens": 25,
        "completion_tokens": 15,
        "total_tokens": 40,
    }
    await flushed(app_client)
    record = memory_sink.records[0]
    assert record.usage.total_tokens == 40
    assert record.response["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == '{"city": "Paris"}'


async def test_anthropic_completions_through_messages_api(app_client, respx_mock):
    answer = {
        "id": "msg_02",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": " 4"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 4, "output_tokens": 1},
    }
    route = respx_mock.post(f"{ANTHROPIC}/messages").mock(return_value=httpx.Response(200, json=answer))
    r = await app_client.post(
        "/v1/completions", json={"model": "claude-completions", "prompt": "2+2=", "max_tokens": 5}
    )
    assert r.status_code == 200
    assert r.json()["object"] == "text_completion" and r.json()["choices"][0]["text"] == " 4"
    payload = orjson.loads(route.calls.last.request.content)
    assert payload["messages"] == [{"role": "user", "content": [{"type": "text", "text": "2+2="}]}]
    assert payload["max_tokens"] == 5
