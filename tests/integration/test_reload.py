"""Config hot reload through the ASGI app: admin route, file watching, SIGHUP, rejected configs."""

from __future__ import annotations

import os
import signal

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import build_app
from gateway.config import load_config
from tracking.sink import MemorySink

pytestmark = pytest.mark.anyio

TEMPLATE = """
endpoints:
  - name: chat
    endpoint_type: llm/v1/chat
    model: {{provider: openai, name: {model}, config: {{openai_api_key: k, openai_api_base: "https://{host}/v1"}}}}
    limit: {{renewal_period: minute, calls: 3}}
gateway:
  reload: {{watch: {watch}, debounce_ms: 50}}
"""
MESSAGES = [{"role": "user", "content": "hi"}]


def answer(model: str) -> httpx.Response:
    message = {"role": "assistant", "content": model}
    return httpx.Response(
        200,
        json={"id": "c", "object": "chat.completion", "created": 1, "model": model,
              "choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": None},
    )  # fmt: skip


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(TEMPLATE.format(model="model-a", host="a.example", watch="false"))
    return path


async def start(path):
    app = build_app(load_config(path), sink=MemorySink(), transport="httpx")
    manager = LifespanManager(app)
    await manager.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://gw")
    return manager, client


@pytest.fixture
async def gateway(config_file, respx_mock):
    respx_mock.post("https://a.example/v1/chat/completions").mock(side_effect=lambda _: answer("model-a"))
    respx_mock.post("https://b.example/v1/chat/completions").mock(side_effect=lambda _: answer("model-b"))
    manager, client = await start(config_file)
    yield client
    await client.aclose()
    await manager.__aexit__(None, None, None)


async def served_model(client) -> str:
    r = await client.post("/v1/chat/completions", json={"model": "chat", "messages": MESSAGES})
    assert r.status_code == 200, r.text
    return r.json()["model"]


async def test_admin_reload_swaps_the_provider(gateway, config_file):
    before = (await gateway.get("/health")).json()["config_version"]
    assert await served_model(gateway) == "model-a"
    config_file.write_text(TEMPLATE.format(model="model-b", host="b.example", watch="false"))
    r = await gateway.post("/admin/reload")
    assert r.status_code == 200 and r.json()["result"] == "reloaded"
    assert await served_model(gateway) == "model-b"
    health = (await gateway.get("/health")).json()
    assert health["config_version"] == r.json()["version"] != before
    assert health["last_reload"]["result"] == "reloaded" and health["last_reload"]["trigger"] == "admin"
    assert (await gateway.post("/admin/reload")).json()["result"] == "unchanged"


async def test_broken_config_is_refused_and_the_old_one_keeps_serving(gateway, config_file):
    version = (await gateway.get("/health")).json()["config_version"]
    config_file.write_text(
        TEMPLATE.format(model="model-b", host="b.example", watch="false").replace("openai", "opena1")
    )
    r = await gateway.post("/admin/reload")
    assert r.status_code == 422
    assert (
        r.json()["result"] == "rejected"
        and "endpoints[0].model.provider: unknown provider 'opena1'" in r.json()["error"]
    )
    assert await served_model(gateway) == "model-a"
    health = (await gateway.get("/health")).json()
    assert health["config_version"] == version and "opena1" in health["last_reload"]["error"]
    metrics = (await gateway.get("/metrics")).text
    assert 'gateway_config_reloads_total{result="rejected"}' in metrics


async def test_rate_limit_state_survives_a_reload_that_keeps_it(gateway, config_file):
    for _ in range(3):
        await served_model(gateway)
    config_file.write_text(TEMPLATE.format(model="model-b", host="b.example", watch="false"))
    assert (await gateway.post("/admin/reload")).json()["result"] == "reloaded"
    r = await gateway.post("/v1/chat/completions", json={"model": "chat", "messages": MESSAGES})
    assert r.status_code == 429, "a reload must not reset the limit"


async def test_file_change_is_picked_up_by_the_watcher(config_file, respx_mock):
    respx_mock.post("https://a.example/v1/chat/completions").mock(side_effect=lambda _: answer("model-a"))
    respx_mock.post("https://b.example/v1/chat/completions").mock(side_effect=lambda _: answer("model-b"))
    config_file.write_text(TEMPLATE.format(model="model-a", host="a.example", watch="true"))
    manager, client = await start(config_file)
    try:
        assert await served_model(client) == "model-a"
        await anyio.sleep(0.3)  # let the watcher start
        # Replace the file the way editors and ConfigMaps do: write aside, then rename over it.
        tmp = config_file.with_suffix(".tmp")
        tmp.write_text(TEMPLATE.format(model="model-b", host="b.example", watch="true"))
        os.replace(tmp, config_file)
        with anyio.fail_after(10):
            while (await client.get("/health")).json()["last_reload"] is None:
                await anyio.sleep(0.05)
        assert await served_model(client) == "model-b"
    finally:
        await client.aclose()
        await manager.__aexit__(None, None, None)


async def test_sighup_reloads(gateway, config_file):
    config_file.write_text(TEMPLATE.format(model="model-b", host="b.example", watch="false"))
    os.kill(os.getpid(), signal.SIGHUP)
    with anyio.fail_after(10):
        while (await gateway.get("/health")).json()["last_reload"] is None:
            await anyio.sleep(0.05)
    assert (await gateway.get("/health")).json()["last_reload"]["trigger"] == "SIGHUP"
    assert await served_model(gateway) == "model-b"


async def test_admin_reload_without_a_config_file_is_409(app_client):
    r = await app_client.post("/admin/reload")
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_config_file"


async def test_a_reload_swaps_the_gateway_keys_too(tmp_path, respx_mock, monkeypatch):
    respx_mock.post("https://a.example/v1/chat/completions").mock(side_effect=lambda _: answer("model-a"))
    old_key, new_key, admin_key = "gw-old-key-0123456789", "gw-new-key-0123456789", "gw-admin-key-0123456789"
    monkeypatch.setenv("TEST_ADMIN_KEY", admin_key)
    base = TEMPLATE.format(model="model-a", host="a.example", watch="false")
    keys = "auth:\n  keys: [{{name: team, key: {key}}}]\n  admin_keys: [{{name: ops, key: $TEST_ADMIN_KEY}}]\n"
    path = tmp_path / "gateway.yaml"
    path.write_text(base + keys.format(key=old_key))
    manager, client = await start(path)
    try:
        body = {"model": "chat", "messages": MESSAGES}
        call = lambda key: client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})  # noqa: E731
        assert (await call(old_key)).status_code == 200
        path.write_text(base + keys.format(key=new_key))
        r = await client.post("/admin/reload", headers={"Authorization": f"Bearer {admin_key}"})
        assert r.json()["result"] == "reloaded"
        assert (await call(old_key)).status_code == 401, "a key removed from the config stops working at once"
        assert (await call(new_key)).status_code == 200
    finally:
        await client.aclose()
        await manager.__aexit__(None, None, None)
