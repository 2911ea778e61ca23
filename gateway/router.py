"""EndpointRouter: a name -> an Endpoint (config, provider, limiter, breaker). Built whole from a config.

A reload builds a new router and swaps one reference; calls in flight keep the router they
started with. Limit counters (kept in the app's store) and breaker state carry over for endpoints whose
settings did not change.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from gateway.config import PERIOD_SECONDS, CircuitBreaker, EndpointConfig, GatewayConfig, TrafficRoute, WeightedModel
from gateway.errors import EndpointNotFound, EndpointUnavailable
from gateway.providers import get_provider_class
from gateway.providers.base import Provider
from gateway.ratelimit import EndpointLimiter, LimitStore, MemoryStore
from gateway.upstream import UpstreamClient


class Breaker:
    """Opens after `failures` consecutive failures; after `cooldown` s lets one trial call through."""

    __slots__ = ("settings", "consecutive", "open_until")

    def __init__(self, settings: CircuitBreaker) -> None:
        self.settings = settings
        self.consecutive = 0
        self.open_until = 0.0

    def is_open(self, now: float) -> bool:
        return now < self.open_until

    def check(self, endpoint: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now < self.open_until:
            raise EndpointUnavailable(
                f"endpoint {endpoint!r} is skipped after {self.consecutive} consecutive upstream failures "
                f"(circuit open for {self.open_until - now:.0f} s more)",
                code="circuit_open",
            )

    def record(self, ok: bool, now: float | None = None) -> None:
        if ok:
            self.consecutive = 0
            return
        self.consecutive += 1
        if self.consecutive >= self.settings.failures:
            # Also re-opens at once when the one trial call after a cooldown fails.
            self.open_until = (time.monotonic() if now is None else now) + self.settings.cooldown


@dataclass(slots=True)
class Target:
    """One model behind an endpoint: its provider (None while its credential is not set) and breaker."""

    model: WeightedModel
    provider: Provider | None
    unavailable: str | None = None
    breaker: Breaker | None = None

    def record(self, ok: bool) -> None:
        if self.breaker is not None:
            self.breaker.record(ok)


@dataclass(slots=True)
class Endpoint:
    config: EndpointConfig
    targets: list[Target]
    limiter: EndpointLimiter | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def available(self) -> bool:
        return any(t.provider is not None for t in self.targets)

    @property
    def unavailable(self) -> str | None:
        """Why no model of this endpoint can serve (credentials not set), or None."""
        return None if self.available else "; ".join(t.unavailable or "" for t in self.targets)

    async def ready(self) -> Target:
        """A model to call now: weighted among those with a credential and a closed circuit; then the limits."""
        now = time.monotonic()
        usable = [
            t for t in self.targets if t.provider is not None and (t.breaker is None or not t.breaker.is_open(now))
        ]
        if not usable:
            if not self.available:
                raise EndpointUnavailable(
                    f"endpoint {self.name!r} is unavailable: {self.unavailable}", code="endpoint_unavailable"
                )
            for t in self.targets:  # every usable model has its circuit open: say so, with the wait
                if t.breaker is not None:
                    t.breaker.check(self.name, now)
        target = usable[0] if len(usable) == 1 else random.choices(usable, [t.model.weight for t in usable])[0]
        if self.limiter is not None:
            await self.limiter.acquire()
        return target

    async def spend(self, usage: dict[str, Any] | None) -> None:
        """Count a finished call's tokens against the endpoint's token limit."""
        if self.limiter is not None and usage:
            await self.limiter.spend(int(usage.get("total_tokens") or 0))


@dataclass(slots=True)
class TrafficSplit:
    route: TrafficRoute
    destinations: list[Endpoint]
    weights: list[int]

    def pick(self) -> Endpoint:
        return random.choices(self.destinations, self.weights)[0]


class EndpointRouter:
    """Replaced whole on reload, never mutated in place."""

    def __init__(
        self,
        config: GatewayConfig,
        client: UpstreamClient,
        store: LimitStore | None = None,
        previous: EndpointRouter | None = None,
    ) -> None:
        self.config = config
        self.store = store if store is not None else MemoryStore()
        self.version = config.version
        self.created = time.time()
        self.endpoints: dict[str, Endpoint] = {}
        for ep in config.endpoints:
            old = previous.endpoints.get(ep.name) if previous is not None else None
            targets = []
            for j, model in enumerate(ep.targets):
                cfg = config.target_configs[ep.name][j]
                provider = None
                if cfg is not None:
                    # Each model gets its own provider, built with the endpoint's settings and that model.
                    target_ep = ep.model_copy(update={"model": model}) if ep.models else ep
                    provider = get_provider_class(model.provider)(target_ep, cfg, client)
                breaker = self._carry_over(ep, j, old)
                targets.append(Target(model, provider, config.target_unavailable[ep.name][j], breaker))
            self.endpoints[ep.name] = Endpoint(ep, targets, self._limiter(ep))
        self.routes: dict[str, TrafficSplit] = {
            r.name: TrafficSplit(
                r, [self.endpoints[d.name] for d in r.destinations], [d.traffic_percentage for d in r.destinations]
            )
            for r in config.routes
        }

    def _limiter(self, ep: EndpointConfig) -> EndpointLimiter | None:
        if ep.limit is None and ep.token_limit is None:
            return None
        return EndpointLimiter(
            self.store,
            self.config.limits.key_prefix,
            ep.name,
            calls=ep.limit.calls if ep.limit else None,
            period=ep.limit.period_seconds if ep.limit else 60,
            tokens=ep.token_limit.tokens if ep.token_limit else None,
            token_period=PERIOD_SECONDS[ep.token_limit.renewal_period] if ep.token_limit else 60,
        )

    @staticmethod
    def _carry_over(ep: EndpointConfig, index: int, old: Endpoint | None) -> Breaker | None:
        # A reload must not close an open circuit of a model whose settings did not change.
        # (Limit counters need no carrying: they live in the store, keyed by the limit's numbers.)
        if ep.circuit_breaker is None:
            return None
        if old is not None and old.config.circuit_breaker == ep.circuit_breaker and index < len(old.targets):
            previous = old.targets[index]
            if previous.breaker is not None and previous.model == ep.targets[index]:
                return previous.breaker
        return Breaker(ep.circuit_breaker)

    def get(self, name: str, endpoint_type: str | None = None) -> Endpoint:
        """The endpoint called `name`, or for a traffic-split route one of its destinations."""
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            split = self.routes.get(name)
            if split is not None:
                endpoint = split.pick()
        if endpoint is None:
            shown = name if len(name) <= 100 else name[:100] + "..."
            known = ", ".join([*self.endpoints, *self.routes]) or "none"
            raise EndpointNotFound(
                f"endpoint {shown!r} is not configured (known: {known})", param="model", code="endpoint_not_found"
            )
        if endpoint_type is not None and endpoint.config.endpoint_type != endpoint_type:
            raise EndpointNotFound(
                f"endpoint {name!r} is a {endpoint.config.endpoint_type} endpoint, not {endpoint_type}",
                param="model",
                code="wrong_endpoint_type",
            )
        return endpoint

    def fallbacks(self, endpoint: Endpoint) -> list[Endpoint]:
        return [self.endpoints[name] for name in endpoint.config.fallbacks]

    async def aclose(self) -> None:
        for endpoint in self.endpoints.values():
            for target in endpoint.targets:
                if target.provider is not None:
                    await target.provider.aclose()
