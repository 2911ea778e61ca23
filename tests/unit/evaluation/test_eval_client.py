"""Gateway calls: retries on 429/5xx honouring Retry-After, errors as OpenAI bodies, endpoint types."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx
import pytest

from evaluation.cache import ResponseCache
from evaluation.client import (
    GatewayCallError,
    GatewayClient,
    parse_endpoint_uri,
    resolve_gateway_url,
    retry_after_seconds,
)
from tests.unit.evaluation.eval_fakes import GATEWAY_URL, FakeGateway, Reply

pytestmark = pytest.mark.anyio


class SleepRecorder:
    """Stands in for asyncio.sleep: records each requested wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def scripted(*replies: Reply) -> FakeGateway:
    queue = list(replies)
    return FakeGateway(lambda body: queue.pop(0) if queue else Reply("done"))


def client_for(gateway: FakeGateway, sleep: SleepRecorder, **kwargs: Any) -> GatewayClient:
    return GatewayClient(GATEWAY_URL, transport=httpx.ASGITransport(app=gateway.app), sleep=sleep, **kwargs)


async def test_retry_after_is_honoured_then_success() -> None:
    gateway = scripted(Reply("slow down", 429, {"Retry-After": "7"}), Reply("oops", 503), Reply("hello"))
    sleep = SleepRecorder()
    async with client_for(gateway, sleep, retries=2, backoff=0.5) as client:
        answer = await client.ask("chat", messages=[{"role": "user", "content": "hi"}])
    assert answer.text == "hello"
    assert len(gateway.requests) == 3
    assert sleep.waits[0] == 7.0  # the server's Retry-After, not our backoff
    assert 0.25 <= sleep.waits[1] <= 1.0  # backoff for the 503: 0.5 * 2**1, halved by jitter at most


async def test_retry_after_is_capped() -> None:
    gateway = scripted(Reply("slow down", 429, {"Retry-After": "3600"}))
    sleep = SleepRecorder()
    async with client_for(gateway, sleep, max_retry_after=30) as client:
        await client.ask("chat", prompt="x")
    assert sleep.waits == [30]


async def test_retries_exhausted_raise_with_the_gateway_message() -> None:
    gateway = scripted(*[Reply("upstream down", 502)] * 5)
    sleep = SleepRecorder()
    async with client_for(gateway, sleep, retries=2) as client:
        with pytest.raises(GatewayCallError, match="502: upstream down") as info:
            await client.ask("chat", prompt="x")
    assert info.value.status == 502
    assert len(gateway.requests) == 3


async def test_client_errors_are_not_retried() -> None:
    gateway = scripted(Reply("bad field 'messages'", 400))
    sleep = SleepRecorder()
    async with client_for(gateway, sleep) as client:
        with pytest.raises(GatewayCallError, match="400: bad field"):
            await client.ask("chat", prompt="x")
    assert len(gateway.requests) == 1
    assert sleep.waits == []


async def test_connection_errors_are_retried(respx_mock: Any) -> None:
    route = respx_mock.post(f"{GATEWAY_URL}/v1/chat/completions")
    route.side_effect = [httpx.ConnectError("refused"), httpx.Response(200, json=_chat("ok"))]
    respx_mock.get(f"{GATEWAY_URL}/api/2.0/endpoints/chat").mock(return_value=httpx.Response(404))
    sleep = SleepRecorder()
    async with GatewayClient(GATEWAY_URL, sleep=sleep) as client:
        answer = await client.ask("chat", prompt="x")
    assert answer.text == "ok"
    assert route.call_count == 2


async def test_completions_endpoint_gets_a_prompt() -> None:
    gateway = FakeGateway(endpoint_types={"legacy": "llm/v1/completions"})
    async with client_for(gateway, SleepRecorder()) as client:
        answer = await client.ask("legacy", messages=[{"role": "user", "content": "abc"}], max_tokens=5)
    assert answer.text == "cba"
    assert gateway.requests == [{"model": "legacy", "prompt": "abc", "max_tokens": 5}]


async def test_cache_answers_repeat_requests_without_calling(tmp_path: Any) -> None:
    gateway = FakeGateway()
    cache = ResponseCache(tmp_path / "cache.sqlite")
    async with client_for(gateway, SleepRecorder(), cache=cache) as client:
        first = await client.ask("chat", prompt="hi", temperature=0)
        second = await client.ask("chat", prompt="hi", temperature=0)
        third = await client.ask("chat", prompt="hi", temperature=1)
    assert (first.cached, second.cached, third.cached) == (False, True, False)
    assert second.text == first.text and second.latency == first.latency
    assert len(gateway.requests) == 2
    cache.close()


def test_retry_after_formats() -> None:
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    future = email.utils.formatdate(time.time() + 120, usegmt=True)
    assert 100 < (retry_after_seconds(future) or 0) <= 120


def test_endpoint_uri_and_gateway_url(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_endpoint_uri("endpoints:/chat") == "chat"
    with pytest.raises(ValueError, match="endpoints:/NAME"):
        parse_endpoint_uri("openai:/gpt-4")
    with pytest.raises(ValueError, match="LLM_GATEWAY_URL"):
        resolve_gateway_url()
    monkeypatch.setenv("MLFLOW_DEPLOYMENTS_TARGET", "http://mlflow:5000/")
    assert resolve_gateway_url() == "http://mlflow:5000"
    monkeypatch.setenv("LLM_GATEWAY_URL", "http://ours:8080")
    assert resolve_gateway_url() == "http://ours:8080"
    assert resolve_gateway_url("http://explicit") == "http://explicit"


def _chat(text: str) -> dict[str, Any]:
    from tests.unit.evaluation.eval_fakes import chat_body

    return chat_body(text)
