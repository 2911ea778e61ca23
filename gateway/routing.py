"""Resilient calls: retries with jittered backoff, then fallbacks, each endpoint behind its breaker.

Retried: connection failures, timeouts, upstream 5xx and 429 (honouring Retry-After).
Never retried: other 4xx, which would fail the same way again. A fallback is tried when an
endpoint fails after its retries, is unavailable, is rate limited or has its circuit open;
each fallback gets a fresh retry budget. For streams all of this happens before the first
chunk is sent, since nothing can be taken back after that.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.config import RetryPolicy
from gateway.errors import EndpointUnavailable, GatewayError, RateLimited, UpstreamTimeout, UpstreamUnavailable
from gateway.providers.base import Provider, RateLimitedUpstream
from gateway.router import Endpoint, EndpointRouter, Target

T = TypeVar("T")
RETRYABLE = (UpstreamUnavailable, UpstreamTimeout, RateLimitedUpstream)
NEXT_ENDPOINT = (*RETRYABLE, EndpointUnavailable, RateLimited)


@dataclass(slots=True)
class Attempts:
    """Filled in by `call` whether it succeeds or fails, for the call's record and metrics."""

    count: int = 0  # upstream calls made, over all endpoints
    upstream_seconds: float = 0.0  # time spent on upstream calls and backoff, over all attempts


@dataclass(slots=True)
class Outcome(Generic[T]):
    value: T
    endpoint: Endpoint  # the one that answered
    target: Target  # and which of its models


def backoff_delay(policy: RetryPolicy, attempt: int, exc: GatewayError) -> float | None:
    """Seconds to wait before the next attempt, or None when the upstream asks for longer than we wait."""
    retry_after = exc.headers.get("Retry-After")
    if retry_after is not None:
        try:
            wanted = float(retry_after)
        except ValueError:
            wanted = policy.max_backoff
        return wanted if wanted <= policy.max_backoff else None
    # Full jitter (AWS architecture blog): spreads retries of many clients over the window.
    return random.uniform(0, min(policy.max_backoff, policy.backoff * 2**attempt))


async def call(
    router: EndpointRouter,
    endpoint: Endpoint,
    op: Callable[[Provider, Endpoint], Awaitable[T]],
    attempts: Attempts,
) -> Outcome[T]:
    last: GatewayError | None = None
    for candidate in (endpoint, *router.fallbacks(endpoint)):
        policy = candidate.config.retries
        for attempt in range(policy.attempts + 1):
            try:
                target = await candidate.ready()
            except NEXT_ENDPOINT as exc:
                last = exc
                break
            attempts.count += 1
            started = time.perf_counter()
            try:
                value = await op(target.provider, candidate)  # type: ignore[arg-type]  # ready() chose one with a provider
            except RETRYABLE as exc:
                target.record(ok=False)
                last = exc
                delay = backoff_delay(policy, attempt, exc) if attempt < policy.attempts else None
                if delay is not None:
                    await asyncio.sleep(delay)
                attempts.upstream_seconds += time.perf_counter() - started
                if delay is None:
                    break
                continue
            except GatewayError:
                target.record(ok=True)  # the upstream answered; the request was at fault
                attempts.upstream_seconds += time.perf_counter() - started
                raise
            target.record(ok=True)
            attempts.upstream_seconds += time.perf_counter() - started
            return Outcome(value, candidate, target)
    assert last is not None
    raise last
