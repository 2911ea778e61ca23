"""Reload under load against the real server: the provider swaps with zero failed calls or broken streams."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

import httpx
import orjson
import pytest

from tests.integration import simple_upstream
from tests.integration.e2e.conftest import gateway_env, start_gateway, stop_gateway

upstream = simple_upstream.upstream  # the module-scoped fixture, used by name below

CONFIG = """
endpoints:
  - name: chat
    endpoint_type: llm/v1/chat
    model: {{provider: openai, name: {model}, config: {{openai_api_key: k, openai_api_base: "{base}"}}}}
gateway:
  reload: {{watch: true, debounce_ms: 50}}
tracking:
  sink: none
"""


@pytest.mark.anyio
async def test_reload_under_load_swaps_provider_with_no_failures(upstream, tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG.format(model="model-a", base=upstream))
    gateway = start_gateway(config, tmp_path, env=gateway_env())
    results: Counter[str] = Counter()
    failures: list[str] = []
    swapped = asyncio.Event()
    after_swap: Counter[str] = Counter()
    stop_at = time.monotonic() + 4.0

    async def client(i: int, http: httpx.AsyncClient) -> None:
        stream = i % 2 == 0
        while time.monotonic() < stop_at:
            was_swapped = swapped.is_set()
            body = {"model": "chat", "messages": [{"role": "user", "content": "x"}], "stream": stream}
            try:
                r = await http.post(f"{gateway.url}/v1/chat/completions", json=body)
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
                continue
            if r.status_code != 200:
                failures.append(f"{r.status_code} {r.text[:200]}")
                continue
            if stream:
                if not r.text.endswith("data: [DONE]\n\n") or '"error"' in r.text:
                    failures.append(f"broken stream: {r.text[-200:]}")
                    continue
                first = orjson.loads(r.text.split("\n\n")[0][6:])
                model = first["model"]
                if not all(f"{model}{n} " in r.text for n in range(10)):
                    failures.append("stream mixed two upstreams")
            else:
                model = r.json()["model"]
            results[model] += 1
            if was_swapped:
                after_swap[model] += 1

    try:
        async with httpx.AsyncClient(timeout=10) as http:
            tasks = [asyncio.create_task(client(i, http)) for i in range(8)]
            await asyncio.sleep(1.5)
            # Swap the provider's model by rewriting the file (rename over it, as editors do).
            tmp = config.with_suffix(".new")
            tmp.write_text(CONFIG.format(model="model-b", base=upstream))
            os.replace(tmp, config)
            deadline = time.monotonic() + 5
            while (await http.get(f"{gateway.url}/health")).json()["last_reload"] is None:
                assert time.monotonic() < deadline, "the watcher did not reload"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # streams that began before the swap may still end on model-a
            swapped.set()
            # A broken config in the middle of the load is refused; the new one keeps serving.
            tmp.write_text("endpoints: [{name: chat}]\n")
            os.replace(tmp, config)
            r = await http.post(f"{gateway.url}/admin/reload")
            assert r.status_code == 422 and "endpoints[0].endpoint_type: field required" in r.json()["error"]
            await asyncio.gather(*tasks)
    finally:
        stop_gateway(gateway)
    assert failures == []
    assert results["model-a"] > 10 and results["model-b"] > 10
    assert set(after_swap) == {"model-b"}, "every call that started after the swap used the new config"


def test_every_worker_converges_on_the_new_config(upstream, tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG.format(model="model-a", base=upstream))
    gateway = start_gateway(config, tmp_path, env=gateway_env(), args=("--workers", "2"))
    try:

        def versions(n: int) -> Counter[str]:
            # A fresh connection per call, so the kernel spreads them over both workers.
            return Counter(httpx.get(f"{gateway.url}/health", timeout=5).json()["config_version"] for _ in range(n))

        pids = set()
        deadline = time.monotonic() + 10
        while len(pids) < 2 and time.monotonic() < deadline:  # both workers up and answering
            pids.add(httpx.get(f"{gateway.url}/health", timeout=5).json()["pid"])
        assert len(pids) == 2
        (old,) = versions(10)
        tmp = config.with_suffix(".new")
        tmp.write_text(CONFIG.format(model="model-b", base=upstream))
        os.replace(tmp, config)
        deadline = time.monotonic() + 10
        while True:
            seen = versions(20)
            if old not in seen:
                break
            assert time.monotonic() < deadline, f"workers did not converge: {seen}"
            time.sleep(0.1)
        assert len(seen) == 1
    finally:
        stop_gateway(gateway)
