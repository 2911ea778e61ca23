"""EndpointRouter: endpoint name -> (config, provider, limiter). Built whole from a config."""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway.config import EndpointConfig, GatewayConfig
from gateway.errors import EndpointNotFound, EndpointUnavailable
from gateway.providers import get_provider_class
from gateway.providers.base import Provider
from gateway.ratelimit import SlidingWindowLimiter
from gateway.upstream import UpstreamClient


@dataclass(slots=True)
class Endpoint:
    config: EndpointConfig
    provider: Provider | None  # None when unavailable
    unavailable: str | None = None
    limiter: SlidingWindowLimiter | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def ready(self) -> Provider:
        if self.provider is None:
            raise EndpointUnavailable(
                f"endpoint {self.name!r} is unavailable: {self.unavailable}", code="endpoint_unavailable"
            )
        if self.limiter is not None:
            self.limiter.acquire(self.name)
        return self.provider


class EndpointRouter:
    """Replaced whole on reload, never mutated in place."""

    def __init__(self, config: GatewayConfig, client: UpstreamClient) -> None:
        self.config = config
        self.version = config.version
        self.created = time.time()
        self.endpoints: dict[str, Endpoint] = {}
        for ep in config.endpoints:
            limiter = SlidingWindowLimiter(ep.limit.calls, ep.limit.period_seconds) if ep.limit else None
            if ep.name in config.unavailable:
                self.endpoints[ep.name] = Endpoint(ep, None, config.unavailable[ep.name], limiter)
                continue
            cls = get_provider_class(ep.model.provider)
            provider = cls(ep, config.provider_configs[ep.name], client)
            self.endpoints[ep.name] = Endpoint(ep, provider, None, limiter)

    def get(self, name: str, endpoint_type: str | None = None) -> Endpoint:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            shown = name if len(name) <= 100 else name[:100] + "..."
            raise EndpointNotFound(
                f"endpoint {shown!r} is not configured (known: {', '.join(self.endpoints) or 'none'})",
                param="model",
                code="endpoint_not_found",
            )
        if endpoint_type is not None and endpoint.config.endpoint_type != endpoint_type:
            raise EndpointNotFound(
                f"endpoint {name!r} is a {endpoint.config.endpoint_type} endpoint, not {endpoint_type}",
                param="model",
                code="wrong_endpoint_type",
            )
        return endpoint

    async def aclose(self) -> None:
        for endpoint in self.endpoints.values():
            if endpoint.provider is not None:
                await endpoint.provider.aclose()
