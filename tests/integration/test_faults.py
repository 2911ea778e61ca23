"""Upstream and client faults, each against a misbehaving upstream we control, through the real server.

The gateway runs as `llm-gateway serve` (aiohttp upstream client, uvicorn + httptools), because
resets, trickles and disconnects only mean something on real sockets.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import OPENAI_KEY
from tests.integration.e2e.conftest import Gateway, free_port, gateway_env, start_gateway, stop_gateway
from tests.integration.fault_upstream import FaultUpstream

pytestmark = pytest.mark.slow
BEHAVIOURS = (
    "ok",
    "slow",
    "reset",
    "resetstream",
    "cutclean",
    "hang",
    "trickle",
    "tricklemid",
    "badjson",
    "html",
    "huge",
    "hugestream",
    "error500",
)
UPSTREAM_LIMIT = 1024 * 1024


def fault_config(fault: FaultUpstream) -> str:
    lines = ["endpoints:"]
    for behaviour in BEHAVIOURS:
        lines.append(f"""
  - name: {behaviour}
    endpoint_type: llm/v1/chat
    model: {{provider: openai, name: gpt-4o-mini, config: {{openai_api_key: $OPENAI_API_KEY, openai_api_base: "{fault.base(behaviour)}"}}}}
    timeout: {{connect: 1, total: 1.5, stream_idle: 1}}""")
    lines.append(f"""
  - name: refused
    endpoint_type: llm/v1/chat
    model: {{provider: openai, name: gpt-4o-mini, config: {{openai_api_key: $OPENAI_API_KEY, openai_api_base: "http://127.0.0.1:{free_port()}/v1"}}}}
gateway:
  max_upstream_body_bytes: {UPSTREAM_LIMIT}
tracking:
  sinks: [{{type: jsonl, path: ./traces.jsonl}}]
  flush_interval: 0.05
""")
    return "".join(lines)


@pytest.fixture(scope="module")
def fault() -> Iterator[FaultUpstream]:
    upstream = FaultUpstream()
    upstream.start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def gw(fault: FaultUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("faults")
    config = workdir / "gateway.yaml"
    config.write_text(fault_config(fault))
    gateway = start_gateway(config, workdir, env=gateway_env(OPENAI_API_KEY=OPENAI_KEY))
    yield gateway
    stop_gateway(gateway)


@pytest.fixture
def http(gw: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.url, timeout=10) as client:
        yield client


@pytest.fixture
def marker() -> str:
    import uuid

    return f"tok{uuid.uuid4().hex[:10]}"


def chat(endpoint: str, marker: str, *, stream: bool = False) -> dict:
    return {"model": endpoint, "messages": [{"role": "user", "content": marker}], "stream": stream}


def record_for(gw: Gateway, marker: str, timeout: float = 5.0) -> dict:
    """The tracking record of the call whose prompt was `marker` (waits for the writer)."""
    path = Path(gw.workdir) / "traces.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                record = json.loads(line)
                if marker in json.dumps(record.get("request")):
                    return record
        time.sleep(0.05)
    raise AssertionError(f"no tracking record for {marker}")


def events(text: str) -> list[str]:
    return [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_connection_refused_is_502(http: httpx.Client, gw: Gateway, marker: str) -> None:
    r = http.post("/v1/chat/completions", json=chat("refused", marker))
    assert r.status_code == 502 and "connection failed" in r.json()["error"]["message"]
    assert record_for(gw, marker)["status"] == 502


def test_reset_mid_response_is_502(http: httpx.Client, gw: Gateway, fault: FaultUpstream, marker: str) -> None:
    r = http.post("/v1/chat/completions", json=chat("reset", marker))
    assert r.status_code == 502 and r.json()["error"]["type"] == "upstream_error"
    assert fault.conn(marker).bytes_sent > 0
    assert record_for(gw, marker)["status"] == 502


def test_reset_mid_stream_is_an_in_band_error_and_the_record_keeps_the_partial_output(
    http: httpx.Client, gw: Gateway, marker: str
) -> None:
    r = http.post("/v1/chat/completions", json=chat("resetstream", marker, stream=True))
    assert r.status_code == 200  # the headers went out with the first chunk
    data = events(r.text)
    assert "partial" in data[0] and "[DONE]" not in data
    error = json.loads(data[-1])["error"]
    assert error["type"] == "upstream_error"
    record = record_for(gw, marker)
    assert record["status"] == 502 and record["stream"] is True
    assert record["response"]["choices"][0]["message"]["content"] == "partial answer"


def test_stream_that_ends_without_finishing_is_an_in_band_error(http: httpx.Client, gw: Gateway, marker: str) -> None:
    # A clean end of the body, but no finish_reason and no [DONE]: the answer was cut short.
    r = http.post("/v1/chat/completions", json=chat("cutclean", marker, stream=True))
    data = events(r.text)
    assert "partial" in data[0]
    assert data[-1] != "[DONE]", "a truncated stream must not look complete to the client"
    assert json.loads(data[-1])["error"]["type"] == "upstream_error"
    assert record_for(gw, marker)["status"] == 502


def test_hang_is_504_and_the_upstream_connection_is_closed(
    http: httpx.Client, gw: Gateway, fault: FaultUpstream, marker: str
) -> None:
    start = time.monotonic()
    r = http.post("/v1/chat/completions", json=chat("hang", marker))
    assert r.status_code == 504 and r.json()["error"]["type"] == "timeout_error"
    assert 1.4 <= time.monotonic() - start < 4
    assert fault.conn(marker).peer_closed.wait(3), "the gateway left the hung upstream connection open"
    assert record_for(gw, marker)["status"] == 504


def test_trickle_before_the_first_event_is_504(http: httpx.Client, gw: Gateway, marker: str) -> None:
    start = time.monotonic()
    r = http.post("/v1/chat/completions", json=chat("trickle", marker, stream=True))
    assert r.status_code == 504
    assert time.monotonic() - start < 4


def test_trickle_mid_stream_hits_the_stream_idle_timeout(
    http: httpx.Client, gw: Gateway, fault: FaultUpstream, marker: str
) -> None:
    # Bytes keep coming (so a socket read timeout never fires) but no event completes.
    start = time.monotonic()
    r = http.post("/v1/chat/completions", json=chat("tricklemid", marker, stream=True))
    elapsed = time.monotonic() - start
    data = events(r.text)
    assert "first" in data[0]
    assert json.loads(data[-1])["error"]["type"] == "timeout_error"
    assert elapsed < 4, f"the trickling stream was held for {elapsed:.1f} s"
    assert fault.conn(marker).peer_closed.wait(3)
    record = record_for(gw, marker)
    assert record["status"] == 504 and record["response"]["choices"][0]["message"]["content"] == "first "


@pytest.mark.parametrize(("endpoint", "stream"), [("badjson", False), ("html", False), ("html", True)])
def test_garbage_and_wrong_content_types_are_502(
    http: httpx.Client, gw: Gateway, marker: str, endpoint: str, stream: bool
) -> None:
    r = http.post("/v1/chat/completions", json=chat(endpoint, marker, stream=stream))
    assert r.status_code == 502 and r.headers["content-type"] == "application/json"
    assert r.json()["error"]["type"] == "upstream_error"
    assert "<html>" not in r.text or endpoint != "html" or "answered" in r.text
    assert record_for(gw, marker)["status"] == 502


@pytest.mark.parametrize(("endpoint", "stream"), [("huge", False), ("hugestream", True)])
def test_oversized_answers_are_cut_off_with_bounded_memory(
    http: httpx.Client, gw: Gateway, fault: FaultUpstream, marker: str, endpoint: str, stream: bool
) -> None:
    before = rss_kib(gw.process.pid)
    r = http.post("/v1/chat/completions", json=chat(endpoint, marker, stream=stream))
    if stream:
        assert r.status_code == 200
        assert json.loads(events(r.text)[-1])["error"]["code"] == "upstream_body_too_large"
    else:
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_body_too_large"
    conn = fault.conn(marker)
    assert conn.peer_closed.wait(3)
    assert conn.bytes_sent < 64 * UPSTREAM_LIMIT, "the gateway kept reading past its limit"
    grown_mib = (rss_kib(gw.process.pid) - before) / 1024
    assert grown_mib < 24, f"gateway RSS grew by {grown_mib:.1f} MiB"


def test_client_disconnect_mid_stream_cancels_the_upstream_and_records_499(
    gw: Gateway, fault: FaultUpstream, marker: str
) -> None:
    with httpx.Client(base_url=gw.url, timeout=10) as client:
        with client.stream("POST", "/v1/chat/completions", json=chat("slow", marker, stream=True)) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data: "):
                    break  # hang up after the first chunk
    left = time.monotonic()
    conn = fault.conn(marker)
    assert conn.peer_closed.wait(3), "the upstream request was not cancelled"
    assert conn.peer_closed_at is not None and conn.peer_closed_at - left < 2
    assert conn.chunks_sent < 30
    record = record_for(gw, marker)
    assert record["status"] == 499 and record["stream"] is True
    assert record["response"]["choices"][0]["message"]["content"].startswith("c0 ")


def test_a_5xx_storm_is_502s_and_the_gateway_keeps_serving(http: httpx.Client, gw: Gateway, marker: str) -> None:
    statuses: list[int] = []
    lock = threading.Lock()
    limits = httpx.Limits(max_connections=40)
    with httpx.Client(base_url=gw.url, timeout=10, limits=limits) as client:

        def call(i: int) -> None:
            status = client.post("/v1/chat/completions", json=chat("error500", f"{marker}-{i}")).status_code
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=15)
    assert statuses == [502] * 40
    r = http.post("/v1/chat/completions", json=chat("ok", marker))
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "all good"


def test_after_every_fault_no_upstream_connection_is_left_open(gw: Gateway, fault: FaultUpstream) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(c.done.is_set() for c in fault.conns):
        time.sleep(0.05)
    assert all(c.done.is_set() for c in fault.conns), [c.behaviour for c in fault.conns if not c.done.is_set()]
    assert httpx.get(f"{gw.url}/health", timeout=5).status_code == 200
