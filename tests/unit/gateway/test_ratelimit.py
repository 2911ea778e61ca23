"""The sliding-window limiter behind MLflow's `limit`."""

from __future__ import annotations

import pytest

from gateway.errors import RateLimited
from gateway.ratelimit import SlidingWindowLimiter


def test_admits_calls_per_period_then_refuses_with_retry_after():
    limiter = SlidingWindowLimiter(2, 60)
    limiter.acquire("e", now=100.0)
    limiter.acquire("e", now=110.0)
    with pytest.raises(RateLimited) as info:
        limiter.acquire("e", now=120.0)
    assert info.value.headers["Retry-After"] == "40"
    assert "2 calls per minute" in info.value.message


def test_window_slides_instead_of_resetting():
    limiter = SlidingWindowLimiter(2, 60)
    limiter.acquire("e", now=0.0)
    limiter.acquire("e", now=59.0)
    limiter.acquire("e", now=60.5)  # the first call left the window
    with pytest.raises(RateLimited):
        limiter.acquire("e", now=61.0)  # a fixed window would admit this one (2x burst at the boundary)
