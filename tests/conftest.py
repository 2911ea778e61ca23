"""Fixtures shared by every test: an anyio backend, inline configs, and the gateway as an ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import build_app
from gateway.config import GatewayConfig
from tests.helpers import ANTHROPIC_KEY, BASE_CONFIG, FIXTURES, OPENAI_KEY, make_config
from tracking.sink import MemorySink


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.delenv("UNSET_TEST_KEY", raising=False)


@pytest.fixture
def config() -> GatewayConfig:
    return make_config(BASE_CONFIG)


@pytest.fixture
def memory_sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def sse_fixture() -> Callable[[str], bytes]:
    return lambda name: (FIXTURES / "sse" / name).read_bytes()


@pytest.fixture
async def app_client(config: GatewayConfig, memory_sink: MemorySink) -> AsyncIterator[httpx.AsyncClient]:
    # transport="httpx": upstream calls go through httpx so respx can mock them.
    app = build_app(config, sink=memory_sink, transport="httpx")
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client
