"""The server process itself: several workers, and a SIGTERM that lets in-flight streams finish and flushes records."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.e2e.conftest import Gateway, gateway_env, start_gateway, stop_gateway
from tests.integration.e2e.e2e_upstream import MockUpstream

CONFIG = """
endpoints:
  - name: chat
    endpoint_type: llm/v1/chat
    model:
      provider: openai
      name: gpt-4o-mini
      config: {{openai_api_key: $E2E_OPENAI_KEY, openai_api_base: "{base}"}}
tracking:
  sinks: [{{type: jsonl, path: ./traces.jsonl}}]
  spool_dir: ./spool
"""


@pytest.fixture
def own_gateway(upstream: MockUpstream, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Gateway]:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG.format(base=upstream.base_url))
    args = getattr(request, "param", ())
    gateway = start_gateway(path, tmp_path, env=gateway_env(), args=args)
    yield gateway
    stop_gateway(gateway)


def _chat(prompt: str, **extra: object) -> dict:
    return {"model": "chat", "messages": [{"role": "user", "content": prompt}], **extra}


@pytest.mark.parametrize("own_gateway", [("--workers", "2")], indirect=True)
def test_serves_with_several_workers(own_gateway: Gateway, token: str) -> None:
    with httpx.Client(base_url=own_gateway.url, timeout=10) as client:
        replies = [client.post("/v1/chat/completions", json=_chat(f"{token} {i}")) for i in range(8)]
        health = client.get("/health")

    assert [r.status_code for r in replies] == [200] * 8
    assert [r.json()["choices"][0]["message"]["content"] for r in replies] == [f"Echo: {token} {i}" for i in range(8)]
    assert health.json()["status"] == "OK"


def test_sigterm_lets_a_stream_finish_and_flushes_its_record(
    own_gateway: Gateway, upstream: MockUpstream, token: str
) -> None:
    prompt = f"MOCK:slow15 {token}"  # about 1.5 s
    events: list[str] = []
    first = threading.Event()

    def consume() -> None:
        with httpx.Client(base_url=own_gateway.url, timeout=10) as client:
            with client.stream("POST", "/v1/chat/completions", json=_chat(prompt, stream=True)) as response:
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        events.append(line.removeprefix("data: "))
                        first.set()

    reader = threading.Thread(target=consume)
    reader.start()
    assert first.wait(timeout=5)
    own_gateway.process.send_signal(signal.SIGTERM)
    reader.join(timeout=10)
    own_gateway.process.wait(timeout=10)

    assert not reader.is_alive()
    assert events[-1] == "[DONE]"  # the in-flight stream was not cut by the shutdown
    assert len(events) == 17  # 15 content chunks, the finish chunk, [DONE]
    assert upstream.stream_log(prompt).completed
    traces = own_gateway.workdir / "traces.jsonl"
    records = [json.loads(line) for line in traces.read_text().splitlines()]
    [record] = [r for r in records if token in json.dumps(r["request"])]
    assert record["stream"] is True and record["status"] == 200
    assert record["ttft_ms"] is not None
    assert "Application shutdown complete" in own_gateway.log()


def test_a_cookie_an_upstream_sets_never_reaches_another_call(
    upstream: MockUpstream, tmp_path: Path, token: str
) -> None:
    # One upstream session serves every client, so a cookie jar in it would hand one caller's
    # upstream session to the next. By name, not IP: cookie jars refuse cookies from IP hosts.
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG.format(base=upstream.base_url.replace("127.0.0.1", "localhost")))
    gateway = start_gateway(path, tmp_path, env=gateway_env())
    try:
        first = httpx.post(f"{gateway.url}/v1/chat/completions", json=_chat(f"{token} MOCK:cookie"), timeout=10)
        assert first.status_code == 200 and "upstream_session" not in first.headers.get("set-cookie", "")
        second = httpx.post(f"{gateway.url}/v1/chat/completions", json=_chat(f"{token} second"), timeout=10)
        assert second.status_code == 200
    finally:
        stop_gateway(gateway)
    (_, received) = upstream.received(token)
    assert "cookie" not in received.headers, received.headers
