"""Streaming delivery through real sockets: chunks are relayed as produced, and a client leaving stops the upstream.

ASGITransport buffers whole bodies, so only a real server can show either property.
"""

from __future__ import annotations

import json
import time

import httpx

from tests.integration.e2e.e2e_upstream import MockUpstream


def _chat(prompt: str) -> dict:
    return {"model": "chat", "messages": [{"role": "user", "content": prompt}], "stream": True}


def test_first_chunk_arrives_before_the_last_is_produced(
    http: httpx.Client, upstream: MockUpstream, token: str
) -> None:
    prompt = f"MOCK:slow20 {token}"  # 20 chunks, 100 ms apart: about 2 s in all
    log = upstream.stream_log(prompt)
    start = time.monotonic()
    contents: list[str] = []
    first_at = None
    with http.stream("POST", "/v1/chat/completions", json=_chat(prompt)) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            if first_at is None:
                first_at = time.monotonic()
                produced_by_then, done_by_then = log.chunks_sent, log.completed
            data = line.removeprefix("data: ")
            if data != "[DONE]":
                choice = json.loads(data)["choices"][0]
                if choice["finish_reason"] is None:  # the last chunk only says the answer is finished
                    contents.append(choice["delta"]["content"])
    finished_at = time.monotonic()

    assert first_at is not None
    assert first_at - start < 1.0, "the first chunk waited for the stream to finish"
    assert not done_by_then and produced_by_then < 10
    assert contents == [f"c{i} " for i in range(20)]
    assert log.completed
    assert first_at < log.last_chunk_at  # the client had chunk 0 before the mock produced chunk 19
    assert finished_at - start >= 1.9


def test_client_disconnect_cancels_the_upstream_request(http: httpx.Client, upstream: MockUpstream, token: str) -> None:
    prompt = f"MOCK:slow50 {token}"  # would run for 5 s
    log = upstream.stream_log(prompt)
    with http.stream("POST", "/v1/chat/completions", json=_chat(prompt)) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                break  # got the first chunk: hang up (leaving the block closes the connection)
    left_at = time.monotonic()

    assert log.closed.wait(timeout=3), "the mock upstream never saw its stream end"
    assert not log.completed
    assert log.closed_at is not None and log.closed_at - left_at < 2.0
    assert log.chunks_sent < 30


def test_gateway_keeps_serving_after_a_client_disconnect(http: httpx.Client, token: str) -> None:
    prompt = f"MOCK:slow30 {token}"
    with http.stream("POST", "/v1/chat/completions", json=_chat(prompt)) as response:
        next(response.iter_lines())

    response = http.post("/v1/chat/completions", json={**_chat(f"after {token}"), "stream": False})
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == f"Echo: after {token}"
