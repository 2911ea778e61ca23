"""/metrics with --workers 2 against the real server: one scrape shows the exact sum over workers."""

from __future__ import annotations

import time

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import FLUSH_DELAY_S
from tests.helpers import redis_server
from tests.integration import simple_upstream
from tests.integration.e2e.conftest import gateway_env, start_gateway, stop_gateway

upstream = simple_upstream.upstream  # the module-scoped fixture, used by name below

CONFIG = """
endpoints:
  - name: chat
    endpoint_type: llm/v1/chat
    model: {{provider: openai, name: m, config: {{openai_api_key: k, openai_api_base: "{base}"}}}}
tracking:
  sink: none
"""


def total(url: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    value = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                value += sample.value
    return value


def test_two_workers_sum_exactly_and_stably(upstream, tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG.format(base=upstream))
    gateway = start_gateway(config, tmp_path, env=gateway_env(), args=("--workers", "2"))
    try:
        pids: set[int] = set()
        n = 40
        for i in range(n):
            # A new connection per call: the kernel spreads them over both workers.
            stream = i % 4 == 0
            r = httpx.post(
                f"{gateway.url}/v1/chat/completions",
                json={"model": "chat", "messages": [{"role": "user", "content": "x"}], "stream": stream},
                timeout=10,
            )
            assert r.status_code == 200
            assert "x-request-id" in r.headers and "server-timing" in r.headers and "x-gateway-overhead-ms" in r.headers
        deadline = time.monotonic() + 10
        while len(pids) < 2 and time.monotonic() < deadline:
            pids.add(httpx.get(f"{gateway.url}/health", timeout=5).json()["pid"])
        assert len(pids) == 2, "both workers answered"
        time.sleep(FLUSH_DELAY_S * 5)  # each worker hands its batched samples to the shared files within this
        labels = {"endpoint": "chat", "route": "/v1/chat/completions", "status_class": "2xx"}
        scrapes = [total(gateway.url, "gateway_requests_total", **labels) for _ in range(8)]
        assert scrapes == [n] * 8, "every scrape, whichever worker answers it, shows the sum over both"
        assert total(gateway.url, "gateway_overhead_seconds_count", endpoint="chat") == n
        assert total(gateway.url, "gen_ai_server_time_to_first_token_seconds_count", endpoint="chat") == n // 4
        assert total(gateway.url, "gateway_in_flight_requests") == 0
        assert total(gateway.url, "gateway_build_info") == 1, "gauges aggregate sensibly (max), not summed"
    finally:
        stop_gateway(gateway)


def test_json_access_log_has_one_line_per_call_and_no_content(upstream, tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG.format(base=upstream).replace("openai_api_key: k", "openai_api_key: sk-very-SECRET-key"))
    gateway = start_gateway(config, tmp_path, env=gateway_env(), args=("--access-log", "json"))
    try:
        secret_prompt = "my private prompt text"
        for stream in (False, True):
            r = httpx.post(
                f"{gateway.url}/v1/chat/completions",
                json={"model": "chat", "messages": [{"role": "user", "content": secret_prompt}], "stream": stream},
                headers={"x-request-id": f"req-{stream}"},
                timeout=10,
            )
            assert r.status_code == 200
        httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "nope", "messages": []}, timeout=10)
    finally:
        stop_gateway(gateway)
    lines = [orjson.loads(line) for line in gateway.log().splitlines() if line.startswith('{"ts"')]
    assert [(x["request_id"], x["status"], x["stream"]) for x in lines] == [
        ("req-False", 200, False),
        ("req-True", 200, True),
        (None, 404, False),
    ]
    ok = lines[0]
    assert ok["endpoint"] == "chat" and ok["completion_tokens"] == 1 and ok["latency_ms"] >= ok["overhead_ms"] >= 0
    assert lines[1]["ttft_ms"] is not None and lines[2]["error"] == "not_found_error"
    assert secret_prompt not in gateway.log() and "SECRET" not in gateway.log()


def test_two_workers_sharing_redis_enforce_one_limit(upstream, tmp_path):
    with redis_server() as redis_url:
        config = tmp_path / "gateway.yaml"
        endpoint_with_limit = CONFIG.format(base=upstream).replace(
            '"}}\n', '"}}\n    limit: {renewal_period: minute, calls: 5}\n', 1
        )
        config.write_text(endpoint_with_limit + f"limits:\n  storage: {redis_url}\n")
        gateway = start_gateway(config, tmp_path, env=gateway_env(), args=("--workers", "2"))
        try:
            pids, statuses = set(), []
            for _ in range(12):
                r = httpx.post(  # a new connection each time: both workers take calls
                    f"{gateway.url}/v1/chat/completions",
                    json={"model": "chat", "messages": [{"role": "user", "content": "x"}]},
                    timeout=10,
                )
                statuses.append(r.status_code)
            deadline = time.monotonic() + 10
            while len(pids) < 2 and time.monotonic() < deadline:
                pids.add(httpx.get(f"{gateway.url}/health", timeout=5).json()["pid"])
        finally:
            stop_gateway(gateway)
    assert len(pids) == 2
    assert statuses.count(200) == 5 and statuses.count(429) == 7, statuses
