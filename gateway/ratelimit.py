"""Rate limits: MLflow's `limit` (calls per period) and our `token_limit` (tokens per period).

Counters live in a LimitStore: in memory (one process), or Redis (`limits: {storage: redis://...}`)
so that every worker and replica enforces one limit. Calls use a sliding log (a fixed window
admits twice the limit across a boundary); tokens use fixed windows, because a token count is
only known after the call and a sliding sum per token would cost a Redis round trip per chunk.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from gateway.errors import RateLimited

PERIOD_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}


class TokenLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokens: PositiveInt
    renewal_period: Literal["second", "minute", "hour", "day"] = "minute"


class LimitsSettings(BaseModel):
    """The top-level `limits:` section."""

    model_config = ConfigDict(extra="forbid")
    storage: str = Field("memory", pattern=r"^(memory|rediss?://.+)$")  # memory | redis://host:port/db
    key_prefix: str = "llm-gateway"


class LimitStore(Protocol):
    async def hit(self, key: str, calls: int, period: float) -> float | None:
        """Admit one call, or return the seconds until one would be admitted."""

    async def spend(self, key: str, amount: int, period: float) -> None: ...

    async def spent(self, key: str, period: float) -> tuple[int, float]:
        """(amount spent in the current window, seconds until it ends)."""

    async def aclose(self) -> None: ...


class MemoryStore:
    """One process's counters; kept by the app across reloads, so a reload doesn't reset them."""

    def __init__(self) -> None:
        self._logs: dict[str, deque[float]] = {}
        self._windows: dict[str, tuple[int, int]] = {}  # key -> (window index, amount)

    async def hit(self, key: str, calls: int, period: float, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        log = self._logs.setdefault(key, deque())
        horizon = now - period
        while log and log[0] <= horizon:
            log.popleft()
        if len(log) >= calls:
            return log[0] + period - now
        log.append(now)
        return None

    async def spend(self, key: str, amount: int, period: float) -> None:
        index = int(time.time() // period)
        current, total = self._windows.get(key, (index, 0))
        self._windows[key] = (index, (total if current == index else 0) + amount)

    async def spent(self, key: str, period: float) -> tuple[int, float]:
        now = time.time()
        index = int(now // period)
        current, total = self._windows.get(key, (index, 0))
        return (total if current == index else 0), (index + 1) * period - now

    async def aclose(self) -> None:
        return None


# Sliding log in a sorted set, atomically, on the Redis server's clock (replicas' clocks may differ).
_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local period = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(period * 1000))
  return '-1'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + period - now)
"""
_SPEND = """
local t = redis.call('TIME')
local period = tonumber(ARGV[2])
local index = math.floor(tonumber(t[1]) / period)
local key = KEYS[1] .. ':' .. index
redis.call('INCRBY', key, ARGV[1])
redis.call('EXPIRE', key, period * 2)
"""
_SPENT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local period = tonumber(ARGV[1])
local index = math.floor(now / period)
local spent = redis.call('GET', KEYS[1] .. ':' .. index) or '0'
return {spent, tostring((index + 1) * period - now)}
"""


class RedisStore:
    """Counters shared by every worker and replica that points at the same Redis."""

    def __init__(self, url: str) -> None:
        try:
            import redis.asyncio as redis
        except ImportError as exc:  # pragma: no cover - the dependency is declared
            raise RuntimeError("limits.storage: redis:// needs the 'redis' package (pip install redis)") from exc
        self._redis: Any = redis.from_url(url)
        self._hit = self._redis.register_script(_HIT)
        self._spend = self._redis.register_script(_SPEND)
        self._spent = self._redis.register_script(_SPENT)

    async def hit(self, key: str, calls: int, period: float) -> float | None:
        wait = float(await self._hit(keys=[key], args=[calls, period, uuid.uuid4().hex]))
        return None if wait < 0 else wait

    async def spend(self, key: str, amount: int, period: float) -> None:
        await self._spend(keys=[key], args=[amount, period])

    async def spent(self, key: str, period: float) -> tuple[int, float]:
        spent, left = await self._spent(keys=[key], args=[period])
        return int(spent), float(left)

    async def aclose(self) -> None:
        await self._redis.aclose()


def make_store(settings: LimitsSettings) -> LimitStore:
    return MemoryStore() if settings.storage == "memory" else RedisStore(settings.storage)


def _period_name(seconds: float) -> str:
    return PERIOD_NAMES.get(int(seconds), f"{seconds:g} s")


def _refuse(what: str, wait: float) -> RateLimited:
    retry_after = max(1, math.ceil(wait))
    return RateLimited(
        f"{what}; retry in {retry_after} s", code="rate_limit_exceeded", headers={"Retry-After": str(retry_after)}
    )


class EndpointLimiter:
    """The limits of one endpoint, over a shared store. Keys carry the limit's numbers, so a reload
    that changes a limit starts it fresh while one that keeps it keeps its count."""

    __slots__ = ("store", "endpoint", "calls", "period", "tokens", "token_period", "_calls_key", "_tokens_key")

    def __init__(
        self,
        store: LimitStore,
        prefix: str,
        endpoint: str,
        *,
        calls: int | None,
        period: float,
        tokens: int | None,
        token_period: float,
    ) -> None:
        self.store = store
        self.endpoint = endpoint
        self.calls, self.period = calls, period
        self.tokens, self.token_period = tokens, token_period
        self._calls_key = f"{prefix}:calls:{endpoint}:{calls}/{period:g}"
        self._tokens_key = f"{prefix}:tokens:{endpoint}:{tokens}/{token_period:g}"

    async def acquire(self) -> None:
        if self.tokens is not None:
            spent, left = await self.store.spent(self._tokens_key, self.token_period)
            if spent >= self.tokens:
                raise _refuse(
                    f"endpoint {self.endpoint!r} used its {self.tokens} tokens per {_period_name(self.token_period)}",
                    left,
                )
        if self.calls is not None:
            wait = await self.store.hit(self._calls_key, self.calls, self.period)
            if wait is not None:
                raise _refuse(
                    f"endpoint {self.endpoint!r} is rate limited to {self.calls} calls per {_period_name(self.period)}",
                    wait,
                )

    async def spend(self, tokens: int) -> None:
        if self.tokens is not None and tokens > 0:
            await self.store.spend(self._tokens_key, tokens, self.token_period)
