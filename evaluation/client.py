"""Calls to gateway endpoints (`endpoints:/NAME`): retries, Retry-After, the response cache.

The one place evaluation talks HTTP. Errors from httpx and from the gateway's error body are
translated here into `GatewayCallError`, which carries what the results table shows.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from evaluation.cache import ResponseCache, request_key

URL_ENV_VARS = ("LLM_GATEWAY_URL", "MLFLOW_DEPLOYMENTS_TARGET")
ENDPOINT_PREFIX = "endpoints:/"
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"


class GatewayCallError(Exception):
    """A call that failed for good: a non-retryable status, or retries exhausted."""

    def __init__(self, message: str, *, status: int | None = None, type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type


def parse_endpoint_uri(model: str) -> str:
    """`endpoints:/NAME` -> NAME."""
    if not model.startswith(ENDPOINT_PREFIX) or not model[len(ENDPOINT_PREFIX) :].strip("/"):
        raise ValueError(f"model {model!r} is not a gateway endpoint: use 'endpoints:/NAME'")
    return model[len(ENDPOINT_PREFIX) :].strip("/")


def resolve_gateway_url(explicit: str | None = None) -> str:
    """The argument, else $LLM_GATEWAY_URL, else $MLFLOW_DEPLOYMENTS_TARGET."""
    for candidate in (explicit, *(os.environ.get(name) for name in URL_ENV_VARS)):
        if candidate:
            return candidate.rstrip("/")
    raise ValueError("no gateway URL: pass gateway_url=, or set LLM_GATEWAY_URL or MLFLOW_DEPLOYMENTS_TARGET")


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(response: httpx.Response) -> tuple[str, str | None]:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase, None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error), error.get("type")
    if isinstance(body, dict) and "detail" in body:  # the MLflow routes' error shape
        return str(body["detail"]), None
    return str(body)[:500], None


@dataclass(frozen=True, slots=True)
class Answer:
    """One endpoint answer: the text, the raw body, the call's seconds, and whether it came from cache."""

    text: str
    body: dict[str, Any]
    latency: float
    cached: bool = False


def extract_text(endpoint_type: str, body: dict[str, Any]) -> str:
    try:
        choice = body["choices"][0]
        if endpoint_type == COMPLETIONS:
            return str(choice["text"])
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise GatewayCallError(f"unexpected response shape: {str(body)[:200]}", type="bad_response") from exc
    return content if isinstance(content, str) else ""


class GatewayClient:
    """Sends OpenAI-shaped requests to one gateway, with backoff on 429/5xx and a response cache.

    Args:
        retries: extra attempts after the first, for 429, 5xx, timeouts and connection errors.
        backoff: first backoff in seconds; doubles per attempt, capped at `max_backoff`. A
            `Retry-After` header replaces it (capped at `max_retry_after`).
        sleep: how to wait between attempts (tests pass a recorder instead of waiting).
    """

    def __init__(
        self,
        base_url: str,
        *,
        retries: int = 2,
        request_timeout: float = 60.0,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        max_retry_after: float = 60.0,
        cache: ResponseCache | None = None,
        concurrency: int = 8,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.cache = cache
        self.sleep = sleep
        self.calls = 0  # HTTP attempts made, cache hits excluded
        limits = httpx.Limits(max_connections=max(concurrency * 2, 16), max_keepalive_connections=max(concurrency, 8))
        self._http = httpx.AsyncClient(timeout=request_timeout, limits=limits, transport=transport)
        self._types: dict[str, str] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def endpoint_type(self, name: str) -> str:
        """Ask the gateway's MLflow route once; a gateway that can't say is treated as chat."""
        if name not in self._types:
            try:
                response = await self._http.get(f"{self.base_url}/api/2.0/endpoints/{name}")
                kind = response.json().get("endpoint_type") if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError, AttributeError):
                kind = None
            self._types[name] = kind if kind in (CHAT, COMPLETIONS) else CHAT
        return self._types[name]

    async def ask(
        self, name: str, *, messages: list[dict[str, Any]] | None = None, prompt: str | None = None, **params: Any
    ) -> Answer:
        """Send messages (chat) or a prompt (completions) to endpoint `name`, whichever it serves."""
        kind = await self.endpoint_type(name)
        if kind == COMPLETIONS:
            text = prompt if prompt is not None else _messages_as_prompt(messages or [])
            body: dict[str, Any] = {"model": name, "prompt": text, **params}
            path = "/v1/completions"
        else:
            chat = messages if messages is not None else [{"role": "user", "content": prompt or ""}]
            body = {"model": name, "messages": chat, **params}
            path = "/v1/chat/completions"
        return await self.post(path, body, kind)

    async def post(self, path: str, body: dict[str, Any], endpoint_type: str = CHAT) -> Answer:
        key = request_key(path, body) if self.cache is not None else ""
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return Answer(extract_text(endpoint_type, hit["body"]), hit["body"], hit["latency"], cached=True)
        started = time.perf_counter()
        data = await self._post_with_retries(path, body)
        latency = time.perf_counter() - started
        answer = Answer(extract_text(endpoint_type, data), data, latency)
        if self.cache is not None:
            self.cache.put(key, {"body": data, "latency": latency})
        return answer

    async def _post_with_retries(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        attempt = 0
        while True:
            delay: float | None
            try:
                self.calls += 1
                response = await self._http.post(f"{self.base_url}{path}", json=body)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if attempt >= self.retries:
                    raise GatewayCallError(f"{type(exc).__name__}: {exc}", type="connection_error") from exc
                delay = None
            else:
                if response.status_code < 400:
                    try:
                        data: dict[str, Any] = response.json()
                    except ValueError as exc:
                        raise GatewayCallError("the gateway answered non-JSON", type="bad_response") from exc
                    return data
                message, kind = _error_message(response)
                if response.status_code not in RETRYABLE_STATUS or attempt >= self.retries:
                    raise GatewayCallError(f"{response.status_code}: {message}", status=response.status_code, type=kind)
                delay = retry_after_seconds(response.headers.get("retry-after"))
                if delay is not None:
                    delay = min(delay, self.max_retry_after)
            if delay is None:
                # Exponential with jitter so concurrent rows don't retry in lock-step.
                delay = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
            await self.sleep(delay)
            attempt += 1


def _messages_as_prompt(messages: list[dict[str, Any]]) -> str:
    return "\n\n".join(str(m.get("content", "")) for m in messages)


CURRENT_CLIENT: contextvars.ContextVar[GatewayClient | None] = contextvars.ContextVar("eval_client", default=None)


def current_client() -> GatewayClient | None:
    """The runner's client while a run is going (judges and scorers share its retries and cache)."""
    return CURRENT_CLIENT.get()
