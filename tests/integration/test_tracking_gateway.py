"""Tracking through the real gateway: every call recorded once, redacted, and nothing lost on SIGTERM.

A mock OpenAI upstream runs in a thread; `llm-gateway serve` runs as a subprocess writing to a
SQLite file, which the tests read back with the store once the gateway has exited.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.e2e.conftest import free_port, gateway_env, start_gateway
from tests.integration.e2e.e2e_upstream import OPENAI_KEY, MockUpstream
from tracking.store import open_store

pytestmark = pytest.mark.slow

CONFIG = """
endpoints:
  - name: chat
    endpoint_type: llm/v1/chat
    model:
      provider: openai
      name: gpt-4o-mini
      config: {{openai_api_key: $TRACKING_E2E_KEY, openai_api_base: "{base}"}}
  - name: private
    endpoint_type: llm/v1/chat
    model:
      provider: openai
      name: gpt-4o-mini
      config: {{openai_api_key: $TRACKING_E2E_KEY, openai_api_base: "{base}"}}
tracking:
  sinks: [{{type: sqlite, path: "{db}"}}]
  spool_dir: "{spool}"
  batch_size: 200
  redact: ['\\b\\d{{3}}-\\d{{2}}-\\d{{4}}\\b']
  endpoints:
    private: {{capture: metadata}}
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockUpstream]:
    mock = MockUpstream()
    mock.start(free_port())
    yield mock
    mock.stop()


class Gateway:
    def __init__(self, tmp_path: Path, upstream: MockUpstream) -> None:
        self.db = tmp_path / "traces.db"
        config = tmp_path / "gateway.yaml"
        config.write_text(CONFIG.format(base=upstream.base_url, db=self.db, spool=tmp_path / "spool"))
        started = start_gateway(
            config, tmp_path, env=gateway_env(TRACKING_E2E_KEY=OPENAI_KEY), args=("--log-level", "warning")
        )
        self.url, self.process, self.log = started.url, started.process, started.log_path

    def terminate(self) -> int:
        """SIGTERM and wait; uvicorn re-raises the signal after a graceful shutdown, hence -15."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@pytest.fixture
def gateway(tmp_path: Path, upstream: MockUpstream) -> Iterator[Gateway]:
    gw = Gateway(tmp_path, upstream)
    yield gw
    if gw.process.poll() is None:
        gw.process.kill()
        gw.process.wait()


async def call(client: httpx.AsyncClient, i: int, endpoint: str = "chat") -> str | None:
    """One chat call whose prompt is unique; returns the prompt if the gateway answered 200.

    Raises httpx.TransportError once the gateway is gone.
    """
    prompt = f"call-{i} ssn 123-45-6789"
    response = await client.post(
        "/v1/chat/completions",
        json={"model": endpoint, "messages": [{"role": "user", "content": prompt}]},
        headers={"x-request-id": f"req-{i}"},
    )
    return prompt if response.status_code == 200 else None


async def load(url: str, n: int, concurrency: int, endpoint: str = "chat") -> list[str]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        queue = iter(range(n))
        done: list[str] = []

        async def worker() -> None:
            for i in queue:
                try:
                    prompt = await call(client, i, endpoint)
                except httpx.TransportError:
                    return  # the gateway is shutting down: this worker is done
                if prompt is not None:
                    done.append(prompt)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done


def test_every_call_recorded_exactly_once_with_usage_and_redaction(gateway: Gateway) -> None:
    n = 10_000
    done = asyncio.run(load(gateway.url, n, concurrency=32))
    assert len(done) == n
    asyncio.run(load(gateway.url, 5, concurrency=5, endpoint="private"))
    assert gateway.terminate() in (0, -signal.SIGTERM), gateway.log.read_text()

    with open_store(str(gateway.db)) as store:
        assert store.count_traces(endpoint="chat") == n
        traces = list(store.iter_traces(endpoint="chat", page_size=2000))
        private = store.list_traces(endpoint="private")["traces"]
    assert len({t["id"] for t in traces}) == n
    assert {t["client_request_id"] for t in traces} == {f"req-{i}" for i in range(n)}
    for t in traces:
        assert t["status"] == 200
        assert t["usage"] == {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}
        i = t["client_request_id"].removeprefix("req-")
        # The record pairs the right request with the right answer, with the SSN redacted in both.
        assert t["request"]["messages"][0]["content"] == f"call-{i} ssn [REDACTED]"
        assert t["response"]["choices"][0]["message"]["content"] == f"Echo: call-{i} ssn [REDACTED]"
    assert len(private) == 5
    assert all("messages" not in t["request"] and "message" not in t["response"]["choices"][0] for t in private)
    assert OPENAI_KEY not in gateway.db.read_bytes().decode(errors="replace")


def test_sigterm_under_load_keeps_every_completed_call(gateway: Gateway, upstream: MockUpstream) -> None:
    async def scenario() -> list[str]:
        before = len(upstream.requests)
        calls = asyncio.create_task(load(gateway.url, 100_000, concurrency=32))
        # Let the load build up, then stop the gateway with calls in flight.
        while len(upstream.requests) - before < 2000 and not calls.done():
            await asyncio.sleep(0.05)
        gateway.process.send_signal(signal.SIGTERM)
        return await calls

    done = asyncio.run(scenario())
    assert gateway.terminate() in (0, -signal.SIGTERM), gateway.log.read_text()
    assert 0 < len(done) < 100_000
    with open_store(str(gateway.db)) as store:
        recorded = {t["request"]["messages"][0]["content"] for t in store.iter_traces(status=200, page_size=5000)}
    assert {p.replace("123-45-6789", "[REDACTED]") for p in done} <= recorded
    assert not list((gateway.db.parent / "spool").glob("*.jsonl*"))
