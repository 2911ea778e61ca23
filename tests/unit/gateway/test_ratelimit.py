"""Rate limits over the in-memory store and a real Redis server."""

from __future__ import annotations

import pytest

from gateway.errors import RateLimited
from gateway.ratelimit import EndpointLimiter, MemoryStore, RedisStore
from tests.helpers import redis_server

pytestmark = pytest.mark.anyio


async def test_sliding_log_admits_calls_per_period_then_says_how_long_to_wait():
    store = MemoryStore()
    assert await store.hit("k", 2, 60, now=100.0) is None
    assert await store.hit("k", 2, 60, now=110.0) is None
    assert await store.hit("k", 2, 60, now=120.0) == 40.0


async def test_window_slides_instead_of_resetting():
    store = MemoryStore()
    for now in (0.0, 59.0, 60.5):  # the first call has left the window by 60.5
        assert await store.hit("k", 2, 60, now=now) is None
    # A fixed window would admit this one too: twice the limit across the boundary.
    assert await store.hit("k", 2, 60, now=61.0) is not None


async def test_endpoint_limiter_refuses_with_retry_after():
    limiter = EndpointLimiter(MemoryStore(), "t", "chat", calls=1, period=60, tokens=None, token_period=60)
    await limiter.acquire()
    with pytest.raises(RateLimited) as info:
        await limiter.acquire()
    assert "1 calls per minute" in info.value.message and 1 <= int(info.value.headers["Retry-After"]) <= 60


async def test_token_limit_refuses_once_the_budget_is_spent():
    limiter = EndpointLimiter(MemoryStore(), "t", "chat", calls=None, period=60, tokens=100, token_period=3600)
    await limiter.acquire()
    await limiter.spend(60)
    await limiter.acquire()  # 60 < 100: still admitted
    await limiter.spend(60)
    with pytest.raises(RateLimited) as info:
        await limiter.acquire()
    assert "100 tokens per hour" in info.value.message


async def test_limits_with_other_numbers_count_separately():
    store = MemoryStore()
    a = EndpointLimiter(store, "t", "chat", calls=1, period=60, tokens=None, token_period=60)
    b = EndpointLimiter(store, "t", "chat", calls=2, period=60, tokens=None, token_period=60)
    await a.acquire()
    await b.acquire()  # a changed limit (after a reload) starts fresh


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url


async def test_two_workers_sharing_redis_enforce_one_limit(redis_url):
    # Two stores = two gateway processes; one Redis = one limit between them.
    workers = [RedisStore(redis_url), RedisStore(redis_url)]
    limiters = [
        EndpointLimiter(s, "test-shared", "chat", calls=5, period=60, tokens=None, token_period=60) for s in workers
    ]
    admitted = refused = 0
    for i in range(12):
        try:
            await limiters[i % 2].acquire()
            admitted += 1
        except RateLimited as exc:
            refused += 1
            assert 1 <= int(exc.headers["Retry-After"]) <= 60
    assert (admitted, refused) == (5, 7)
    for s in workers:
        await s.aclose()


async def test_redis_token_budget_is_shared(redis_url):
    workers = [RedisStore(redis_url), RedisStore(redis_url)]
    a, b = (
        EndpointLimiter(s, "test-tokens", "chat", calls=None, period=60, tokens=50, token_period=3600) for s in workers
    )
    await a.acquire()
    await a.spend(30)
    await b.acquire()
    await b.spend(30)
    with pytest.raises(RateLimited):
        await a.acquire()
    for s in workers:
        await s.aclose()
