"""In-memory rate limiting for MLflow's `limit: {calls, renewal_period}`, per endpoint."""

from __future__ import annotations

import math
import time
from collections import deque

from gateway.errors import RateLimited


class SlidingWindowLimiter:
    """At most `calls` admitted in any `period` seconds (a log of admission times).

    A sliding log instead of a fixed window: a fixed window admits 2x the limit across a
    boundary, which surprises people who set a limit to protect a provider quota.
    """

    __slots__ = ("calls", "period", "_admitted")

    def __init__(self, calls: int, period: float) -> None:
        self.calls = calls
        self.period = period
        self._admitted: deque[float] = deque()

    def acquire(self, endpoint: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        horizon = now - self.period
        admitted = self._admitted
        while admitted and admitted[0] <= horizon:
            admitted.popleft()
        if len(admitted) >= self.calls:
            retry_after = max(1, math.ceil(admitted[0] + self.period - now))
            raise RateLimited(
                f"endpoint {endpoint!r} is rate limited to {self.calls} calls per {_period_name(self.period)}; "
                f"retry in {retry_after} s",
                code="rate_limit_exceeded",
                headers={"Retry-After": str(retry_after)},
            )
        admitted.append(now)


def _period_name(seconds: float) -> str:
    return {1: "second", 60: "minute", 3600: "hour", 86400: "day"}.get(int(seconds), f"{seconds:g} s")
