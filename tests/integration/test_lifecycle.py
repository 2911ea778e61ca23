"""Shutdown under load through the real server: drain, flush, exit 0; a second signal exits at once."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import OPENAI_KEY
from tests.integration.e2e.conftest import Gateway, gateway_env, start_gateway, stop_gateway
from tests.integration.fault_upstream import FaultUpstream

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fault() -> Iterator[FaultUpstream]:
    upstream = FaultUpstream()
    upstream.start()
    yield upstream
    upstream.stop()


def launch(fault: FaultUpstream, workdir: Path, graceful: int) -> Gateway:
    config = workdir / "gateway.yaml"
    config.write_text(f"""
endpoints:
  - name: slow
    endpoint_type: llm/v1/chat
    model: {{provider: openai, name: gpt-4o-mini, config: {{openai_api_key: $OPENAI_API_KEY, openai_api_base: "{fault.base("slow")}"}}}}
tracking:
  sinks: [{{type: jsonl, path: ./traces.jsonl}}]
  flush_interval: 0.05
""")
    return start_gateway(
        config, workdir, env=gateway_env(OPENAI_API_KEY=OPENAI_KEY), args=("--graceful-timeout", str(graceful))
    )


@pytest.fixture
def gw_factory(fault: FaultUpstream, tmp_path: Path) -> Iterator:
    started: list[Gateway] = []

    def make(graceful: int = 10) -> Gateway:
        gateway = launch(fault, tmp_path, graceful)
        started.append(gateway)
        return gateway

    yield make
    for gateway in started:
        stop_gateway(gateway)


class Call(threading.Thread):
    """One call in a thread: a non-streamed one, or a stream read to its end (or its cut)."""

    def __init__(self, url: str, marker: str, stream: bool) -> None:
        super().__init__(daemon=True)
        self.url, self.marker, self.stream = url, marker, stream
        self.status: int | None = None
        self.events: list[str] = []
        self.error: Exception | None = None
        self.first = threading.Event()

    def run(self) -> None:
        body = {"model": "slow", "messages": [{"role": "user", "content": self.marker}], "stream": self.stream}
        try:
            with httpx.Client(base_url=self.url, timeout=20) as client:
                with client.stream("POST", "/v1/chat/completions", json=body) as r:
                    self.status = r.status_code
                    self.first.set()
                    if not self.stream:
                        self.events.append(r.read().decode())
                        return
                    for line in r.iter_lines():
                        if line.startswith("data: "):
                            self.events.append(line.removeprefix("data: "))
        except httpx.HTTPError as exc:
            self.error = exc
        finally:
            self.first.set()


def records(gw: Gateway) -> list[dict]:
    path = gw.workdir / "traces.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def start_calls(gw: Gateway, fault: FaultUpstream, plain: int, streams: int) -> list[Call]:
    calls = [Call(gw.url, f"tok{uuid.uuid4().hex[:10]}", i >= plain) for i in range(plain + streams)]
    for call in calls:
        call.start()
    for call in calls:
        fault.conn(call.marker)  # every call has reached the upstream: all are in flight
    return calls


def test_sigterm_drains_calls_and_streams_flushes_tracking_and_exits_0(gw_factory, fault: FaultUpstream) -> None:
    gw = gw_factory(graceful=10)
    calls = start_calls(gw, fault, plain=6, streams=4)  # 1.5 s calls, 4 s streams
    signalled = time.monotonic()
    gw.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{gw.url}/health", timeout=2)  # no longer accepting
    assert gw.process.wait(timeout=15) == 0, gw.log()
    took = time.monotonic() - signalled
    for call in calls:
        call.join(timeout=5)
        assert call.error is None and call.status == 200, (call.marker, call.error)
        if call.stream:
            assert len(call.events) == 42 and call.events[-1] == "[DONE]"  # 40 chunks, the finish, [DONE]
        else:
            assert json.loads(call.events[-1])["choices"][0]["message"]["content"] == "slow and steady"
    assert took < 10, "the drain waited for nothing"
    recorded = {r["request"]["messages"][0]["content"]: r for r in records(gw)}
    for call in calls:
        assert recorded[call.marker]["status"] == 200
    assert "Application shutdown complete" in gw.log()


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_exits_at_once_and_still_records_the_cut_calls(
    gw_factory, fault: FaultUpstream, second: signal.Signals
) -> None:
    gw = gw_factory(graceful=30)
    calls = start_calls(gw, fault, plain=0, streams=3)  # 4 s each
    for call in calls:
        assert call.first.wait(5)
    gw.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    forced = time.monotonic()
    gw.process.send_signal(second)
    assert gw.process.wait(timeout=8) == 0, gw.log()  # 0: tracking was flushed on the way out
    assert time.monotonic() - forced < 2.5, "the second signal did not cut the drain short"
    for call in calls:
        call.join(timeout=5)
        assert "[DONE]" not in call.events
        assert fault.conn(call.marker).peer_closed.wait(3), "the upstream stream was left open"
    recorded = {r["request"]["messages"][0]["content"]: r for r in records(gw)}
    assert {recorded[c.marker]["status"] for c in calls} == {499}
    assert "second signal: cancelling 3 call(s) in flight" in gw.log()


def test_the_grace_period_bounds_the_drain(gw_factory, fault: FaultUpstream) -> None:
    gw = gw_factory(graceful=1)
    (call,) = start_calls(gw, fault, plain=0, streams=1)
    assert call.first.wait(5)
    signalled = time.monotonic()
    gw.process.send_signal(signal.SIGTERM)
    assert gw.process.wait(timeout=8) == 0, gw.log()
    assert 0.9 < time.monotonic() - signalled < 4
    call.join(timeout=5)
    assert "[DONE]" not in call.events
    (record,) = records(gw)
    assert record["status"] == 499 and record["response"]["choices"][0]["message"]["content"].startswith("c0 ")
