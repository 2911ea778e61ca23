"""Gateway keys: who may call, which endpoints, how often. Off unless the config has an `auth:` section.

    auth:
      keys:
        - name: team-a                      # recorded in tracking; the key itself never is
          key: $TEAM_A_KEY                  # $VAR, a file path, or "sha256:<hex>" of the key
          endpoints: [chat, embeddings]     # or "*" (the default)
          limit: {renewal_period: minute, calls: 120}
      admin_keys:
        - {name: ops, key: "sha256:9f86d0..."}
      metrics_requires_key: false

A client sends its key as `Authorization: Bearer <key>` or `x-api-key: <key>`. The middleware
hashes it with sha256 and compares digests with `hmac.compare_digest` against every configured
key (no early exit), so neither the comparison nor the lookup depends on how close a guess was.
Only digests are kept in memory once the config is loaded.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, PrivateAttr, SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import metrics
from gateway.errors import AuthenticationFailed, ConfigError, GatewayError, PermissionDenied, RateLimited
from gateway.ratelimit import LimitStore

logger = logging.getLogger("gateway.auth")

PUBLIC_PATHS = frozenset({"/health", "/openapi.json"})
ADMIN_PREFIXES = ("/admin/", "/api/traces", "/api/runs")
MLFLOW_PREFIXES = ("/api/2.0/", "/endpoints/", "/gateway/")
MIN_KEY_CHARS = 16
_SHA256_RE = re.compile(r"^sha256:([0-9a-fA-F]{64})$")
_PERIOD_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}

AUTH_FAILURES = Counter(
    "gateway_auth_failures_total",
    "Requests refused by gateway-key auth, by reason (missing, invalid, forbidden, rate_limited).",
    ["reason"],
    registry=metrics.REGISTRY,
)


class KeyLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    renewal_period: Literal["second", "minute", "hour", "day"]
    calls: PositiveInt


class AdminKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    key: SecretStr
    _digest: bytes | None = PrivateAttr(None)


class GatewayKey(AdminKey):
    endpoints: list[str] | Literal["*"] = "*"
    limit: KeyLimit | None = None


class AuthSettings(BaseModel):
    """The `auth:` section. Present (with any key) means every non-public route needs a key."""

    model_config = ConfigDict(extra="forbid")
    keys: list[GatewayKey] = Field(default_factory=list)
    admin_keys: list[AdminKey] = Field(default_factory=list)
    metrics_requires_key: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.keys or self.admin_keys)


def resolve_keys(auth: AuthSettings, *, strict: bool, warnings: list[str], endpoints: set[str]) -> None:
    """Turn every configured key into its sha256 digest (called once, at config load).

    A key whose variable is not set never matches (auth fails closed) and is reported;
    `strict` refuses the config instead.
    """
    from gateway.config import MissingCredential, resolve_value  # config imports this module

    seen: dict[str, str] = {}
    for section, entries in (("keys", auth.keys), ("admin_keys", auth.admin_keys)):
        for i, entry in enumerate(entries):
            path = f"auth.{section}[{i}]"
            if entry.name in seen:
                raise ConfigError(f"{path}.name: duplicate key name {entry.name!r} (also {seen[entry.name]})")
            seen[entry.name] = path
            raw = entry.key.get_secret_value().strip()
            match = _SHA256_RE.match(raw)
            if match:
                entry._digest = bytes.fromhex(match.group(1))
            else:
                try:
                    value = resolve_value(raw, f"{path}.key", secret=True)
                except MissingCredential as exc:
                    if strict:
                        raise ConfigError(str(exc)) from None
                    warnings.append(f"{exc}; key {entry.name!r} is refused until it is set")
                    continue
                if value == raw:
                    warnings.append(f"{path}.key: a literal key in the config file; prefer $VAR or sha256:<hex>")
                if len(value) < MIN_KEY_CHARS:
                    raise ConfigError(
                        f"{path}.key: too short (a gateway key needs at least {MIN_KEY_CHARS} characters)"
                    )
                entry._digest = hashlib.sha256(value.encode()).digest()
            # Keep only the digest: the plaintext is not needed after this point.
            entry.key = SecretStr("sha256:" + entry._digest.hex())
            if isinstance(entry, GatewayKey) and entry.endpoints != "*":
                for name in entry.endpoints:
                    if name not in endpoints:
                        warnings.append(f"{path}.endpoints: {name!r} is not a configured endpoint")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request authenticated as."""

    name: str
    endpoints: frozenset[str] | None  # None: every endpoint
    admin: bool
    limit: tuple[int, float] | None  # (calls, period seconds); counted in the app's limit store


class Authenticator:
    """The configured keys as digests."""

    def __init__(self, auth: AuthSettings) -> None:
        self.metrics_requires_key = auth.metrics_requires_key
        self._entries: list[tuple[bytes, Principal]] = []
        for key in auth.keys:
            if key._digest is None:
                continue
            allowed = None if key.endpoints == "*" else frozenset(key.endpoints)
            limit = (key.limit.calls, float(_PERIOD_SECONDS[key.limit.renewal_period])) if key.limit else None
            self._entries.append((key._digest, Principal(key.name, allowed, False, limit)))
        for admin in auth.admin_keys:
            if admin._digest is not None:
                self._entries.append((admin._digest, Principal(admin.name, None, True, None)))

    def identify(self, presented: str) -> Principal | None:
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found = None
        for expected, principal in self._entries:
            # Every entry is compared, matched or not, so timing says nothing about which key matched.
            if hmac.compare_digest(expected, digest) and found is None:
                found = principal
        return found


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key from `Authorization: Bearer <key>` or `x-api-key: <key>` (the first one given)."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key" and value.strip():
            return value.decode("latin-1").strip()
    return None


class AuthMiddleware:
    """Pure ASGI (streams pass through untouched): 401 without a valid key, 403 for admin routes.

    On success it sets `scope["gateway.key_name"]`, `scope["gateway.key_endpoints"]` (None for all)
    and `scope["gateway.key_limit"]`; `authorize()` checks them once the endpoint is known.
    """

    def __init__(self, app: ASGIApp, auth: AuthSettings | None = None) -> None:
        self.app = app
        self._fallback = auth
        self._cached: tuple[AuthSettings, Authenticator] | None = None
        self._cached_for: object = None  # the router whose config `_cached` came from

    def _authenticator(self, scope: Scope) -> Authenticator | None:
        # Read the live config, so a reload that swaps the router swaps the keys too.
        state = getattr(scope.get("app"), "state", None)
        router = getattr(state, "router", None)
        if router is not None and self._cached_for is router:  # the common case: no reload since the last call
            return self._cached[1] if self._cached is not None else None
        config = getattr(router, "config", None) or getattr(state, "config", None)
        auth = getattr(config, "auth", None) if config is not None else self._fallback
        self._cached_for = router
        if auth is None or not auth.enabled:
            self._cached = None
            return None
        if self._cached is None or self._cached[0] is not auth:
            self._cached = (auth, Authenticator(auth))
        return self._cached[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authenticator = self._authenticator(scope)
        path: str = scope["path"]
        if (
            authenticator is None
            or path in PUBLIC_PATHS
            or (path == "/metrics" and not authenticator.metrics_requires_key)
        ):
            await self.app(scope, receive, send)
            return
        key = presented_key(scope["headers"])
        principal = authenticator.identify(key) if key is not None else None
        if principal is None:
            reason = "missing" if key is None else "invalid"
            AUTH_FAILURES.labels(reason).inc()
            message = (
                "missing gateway key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
                if key is None
                else "invalid gateway key"
            )
            error = AuthenticationFailed(message, code=f"{reason}_api_key", headers={"WWW-Authenticate": "Bearer"})
            await _send_error(send, path, error)
            return
        if path.startswith(ADMIN_PREFIXES) and not principal.admin:
            AUTH_FAILURES.labels("forbidden").inc()
            await _send_error(send, path, PermissionDenied(f"key {principal.name!r} is not an admin key"))
            return
        scope["gateway.key_name"] = principal.name
        scope["gateway.key_endpoints"] = principal.endpoints
        scope["gateway.key_limit"] = principal.limit
        await self.app(scope, receive, send)


def may_call(scope: Mapping[str, Any], endpoint_name: str) -> bool:
    """Whether the request's key may call this endpoint (any, when auth is off or the key allows "*")."""
    allowed = scope.get("gateway.key_endpoints")
    return allowed is None or endpoint_name in allowed


async def authorize(scope: Mapping[str, Any], endpoint: Any, store: LimitStore, prefix: str) -> None:
    """403 when the request's key may not call `endpoint`; 429 past the key's own limit.

    The key's calls are counted in the app's limit store, like endpoint limits: they survive a
    reload, and with `limits.storage: redis://` every worker and replica shares one count.
    """
    name = scope.get("gateway.key_name")
    if name is None:
        return
    if not may_call(scope, endpoint.name):
        AUTH_FAILURES.labels("forbidden").inc()
        raise PermissionDenied(f"key {name!r} may not call endpoint {endpoint.name!r}", code="endpoint_not_allowed")
    limit: tuple[int, float] | None = scope.get("gateway.key_limit")
    if limit is not None:
        calls, period = limit
        wait = await store.hit(f"{prefix}:key:{name}:{calls}/{period:g}", calls, period)
        if wait is not None:
            AUTH_FAILURES.labels("rate_limited").inc()
            retry_after = max(1, math.ceil(wait))
            raise RateLimited(
                f"key {name!r} is rate limited to {calls} calls per {period:g} s; retry in {retry_after} s",
                code="key_rate_limit_exceeded",
                headers={"Retry-After": str(retry_after)},
            )


async def _send_error(send: Send, path: str, error: GatewayError) -> None:
    if path.startswith(MLFLOW_PREFIXES):
        body = orjson.dumps({"detail": error.message})
    else:
        body = orjson.dumps(error.to_dict())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_access_warning(host: str, auth: AuthSettings | None) -> str | None:
    """The start-up warning for a gateway that anyone on the network can call, or None."""
    if is_loopback(host) or (auth is not None and auth.enabled):
        return None
    return (
        f"!!! the gateway listens on {host}, beyond this machine, and no gateway keys are configured: "
        "anyone who can reach it can spend every provider key it holds. Add an `auth:` section "
        "(docs/security.md) or listen on 127.0.0.1."
    )
