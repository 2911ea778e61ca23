"""The gateway's YAML config: MLflow's deployments-server schema, accepted unchanged, plus our keys.

Loading resolves credentials once (`$VAR`, `${VAR}`, a path to a file, or a literal) into
SecretStr. A missing variable does not fail the load: the endpoint is marked unavailable and
answers 503 naming the variable (unless strict=True). Every error names the key path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, SecretStr

from gateway.auth import AuthSettings, resolve_keys
from gateway.egress import check_upstream_urls
from gateway.errors import ConfigError
from gateway.limits import HardeningSettings
from gateway.ratelimit import LimitsSettings, TokenLimit

logger = logging.getLogger("gateway.config")

EndpointType = Literal["llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings"]
ENDPOINT_TYPES: tuple[str, ...] = ("llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings")
RenewalPeriod = Literal["second", "minute", "hour", "day"]
PERIOD_SECONDS: Mapping[str, int] = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
_ENV_RE = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$")
CONFIG_ENV_VARS = ("LLM_GATEWAY_CONFIG", "MLFLOW_DEPLOYMENTS_CONFIG", "MLFLOW_GATEWAY_CONFIG")


class _Model(BaseModel):
    # Unknown keys are kept so they can be warned about (MLflow drops them silently).
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Limit(_Model):
    renewal_period: RenewalPeriod
    calls: PositiveInt
    key: str | None = None

    @property
    def period_seconds(self) -> int:
        return PERIOD_SECONDS[self.renewal_period]


class ModelConfig(_Model):
    provider: str
    name: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)


class WeightedModel(ModelConfig):
    """One of several models behind one endpoint (our `models:` key), picked by weight per call."""

    weight: PositiveInt = 1


class Timeouts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    connect: float = Field(10.0, gt=0)
    total: float = Field(600.0, gt=0)  # a whole non-streamed call, or a stream's wait for its first chunk
    stream_idle: float | None = Field(None, gt=0)  # longest gap between stream chunks; default: total

    @property
    def idle(self) -> float:
        return self.stream_idle if self.stream_idle is not None else self.total


class RetryPolicy(BaseModel):
    """Retries on connection errors, timeouts, 429 and 5xx; never on other 4xx."""

    model_config = ConfigDict(extra="forbid")
    attempts: int = Field(0, ge=0, le=10)  # extra attempts after the first; 0 = off
    backoff: float = Field(0.5, ge=0)  # first delay in seconds, doubled each attempt, with full jitter
    max_backoff: float = Field(10.0, ge=0)  # a longer Retry-After is not waited for: the error is returned


class CircuitBreaker(BaseModel):
    model_config = ConfigDict(extra="forbid")
    failures: int = Field(5, ge=1)  # consecutive failures that open the circuit
    cooldown: float = Field(30.0, gt=0)  # seconds the endpoint is skipped before one trial call


class EndpointConfig(_Model):
    name: str
    endpoint_type: EndpointType = Field(validation_alias=pydantic.AliasChoices("endpoint_type", "route_type"))
    model: ModelConfig  # MLflow's key; with `models:` it is the first of them (what listings show)
    models: list[WeightedModel] = Field(default_factory=list)
    limit: Limit | None = None
    timeout: Timeouts = Field(default_factory=Timeouts)
    retries: RetryPolicy = Field(default_factory=RetryPolicy)
    fallbacks: list[str] = Field(default_factory=list)
    circuit_breaker: CircuitBreaker | None = None
    token_limit: TokenLimit | None = None

    @pydantic.model_validator(mode="before")
    @classmethod
    def _one_of_model_or_models(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("models"):
            if "model" in data:
                raise ValueError("give either 'model' or 'models' (weighted), not both")
            first = data["models"][0]
            data = {
                **data,
                "model": {k: v for k, v in first.items() if k != "weight"} if isinstance(first, dict) else first,
            }
        return data

    @property
    def targets(self) -> list[WeightedModel]:
        """The models this endpoint spreads calls over: `models:`, or the one `model:` with weight 1."""
        return self.models or [WeightedModel.model_validate(self.model.model_dump())]

    @property
    def target_paths(self) -> list[str]:
        return [f"models[{j}]" for j in range(len(self.models))] if self.models else ["model"]

    @pydantic.field_validator("name")
    @classmethod
    def _url_safe(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError("must be letters, digits, '.', '_' or '-' (it appears in URLs)")
        return value

    @pydantic.field_validator("timeout", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        return {"total": value} if isinstance(value, int | float) else value

    @pydantic.field_validator("retries", mode="before")
    @classmethod
    def _attempts(cls, value: Any) -> Any:
        return {"attempts": value} if isinstance(value, int) else value


class RouteDestination(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    traffic_percentage: int = Field(ge=0, le=100)


class TrafficRoute(BaseModel):
    """MLflow 3's traffic-split route: a name that sends each call to one of several endpoints."""

    model_config = ConfigDict(extra="forbid")
    name: str
    task_type: EndpointType
    destinations: list[RouteDestination] = Field(min_length=1)
    routing_strategy: Literal["TRAFFIC_SPLIT"] = "TRAFFIC_SPLIT"

    @pydantic.model_validator(mode="after")
    def _sums_to_100(self) -> TrafficRoute:
        total = sum(d.traffic_percentage for d in self.destinations)
        if total != 100:
            raise ValueError(f"destinations: traffic_percentage must sum to 100 (got {total})")
        return self


class ReloadSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    watch: bool = True  # reload when the config file changes
    debounce_ms: int = Field(200, ge=0)


class GatewaySettings(HardeningSettings):
    """Our top-level additions (all optional)."""

    model_config = ConfigDict(extra="forbid")
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0)
    # Upstream client: aiohttp (fast under concurrency) or httpx (lets respx mock upstreams in tests).
    transport: Literal["aiohttp", "httpx"] = "aiohttp"
    reload: ReloadSettings = Field(default_factory=ReloadSettings)


class GatewayConfig(BaseModel):
    """A loaded config: endpoints plus our settings, with per-endpoint resolved provider config."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    endpoints: list[EndpointConfig]
    routes: list[TrafficRoute] = Field(default_factory=list)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    tracking: dict[str, Any] = Field(default_factory=dict)
    auth: AuthSettings | None = None
    version: str = ""
    source: str | None = None  # the file it was loaded from (what a reload re-reads)
    strict: bool = False
    warnings: list[str] = Field(default_factory=list)
    # endpoint name -> provider config (validated, secrets resolved); absent when unavailable
    provider_configs: dict[str, BaseModel] = Field(default_factory=dict)  # the first target's
    # endpoint name -> per target (`models:` order): its validated provider config, or why it can't serve
    target_configs: dict[str, list[BaseModel | None]] = Field(default_factory=dict)
    target_unavailable: dict[str, list[str | None]] = Field(default_factory=dict)
    # endpoint name -> why it cannot serve (e.g. a credential variable is not set)
    unavailable: dict[str, str] = Field(default_factory=dict)

    def tracking_settings(self) -> Any:
        """The `tracking:` section as tracking's own settings model (validated at load)."""
        from tracking.config import TrackingSettings  # type: ignore[import-not-found]

        return TrackingSettings.model_validate(self.tracking)

    def endpoint(self, name: str) -> EndpointConfig | None:
        for ep in self.endpoints:
            if ep.name == name:
                return ep
        return None


class MissingCredential(Exception):
    def __init__(self, path: str, variable: str) -> None:
        super().__init__(f"{path}: environment variable {variable} is not set")
        self.variable = variable


def resolve_value(value: Any, path: str, *, secret: bool) -> Any:
    """`$VAR`/`${VAR}` from the environment; for secrets also a path to a file; else the literal."""
    if not isinstance(value, str):
        return value
    match = _ENV_RE.match(value.strip())
    if match:
        resolved = os.environ.get(match.group(1))
        if resolved is None:
            raise MissingCredential(path, match.group(1))
        return resolved
    if secret and len(value) < 4096 and "\n" not in value:
        candidate = Path(value).expanduser()
        try:
            if candidate.is_file():
                # MLflow keeps the file's trailing newline in the key, which then fails auth upstream.
                return candidate.read_text().rstrip("\r\n")
        except OSError:
            pass
    return value


def _warn_extra(model: BaseModel, path: str, warnings: list[str]) -> None:
    for key in model.model_extra or {}:
        warnings.append(f"{path}.{key}: unknown key, ignored")
    for name, value in model:
        if isinstance(value, BaseModel) and value.model_config.get("extra") == "allow":
            _warn_extra(value, f"{path}.{name}", warnings)
        elif isinstance(value, list):
            for j, item in enumerate(value):
                if isinstance(item, BaseModel) and item.model_config.get("extra") == "allow":
                    _warn_extra(item, f"{path}.{name}[{j}]", warnings)


def _format_validation(exc: pydantic.ValidationError, prefix: str) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = prefix
        for part in err["loc"]:
            if part in ("function-after", "function-before") or str(part).startswith("function-"):
                continue
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        msg = "field required" if err["type"] == "missing" else err["msg"]
        lines.append(f"{loc}: {msg}")
    return "\n".join(lines)


def _normalise_top_level(raw: Any, warnings: list[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError("(top level): expected a mapping with an 'endpoints' list")
    data = dict(raw)
    if "routes" in data:
        # Two meanings: MLflow 3's traffic-split routes (with `destinations`), or MLflow 2's legacy
        # name for endpoints (with `route_type`). Each entry says which it is.
        routes = data.pop("routes") or []
        if not isinstance(routes, list):
            raise ConfigError("routes: expected a list")
        legacy = [r for r in routes if not (isinstance(r, dict) and "destinations" in r)]
        data["routes"] = [r for r in routes if isinstance(r, dict) and "destinations" in r]
        if legacy:
            warnings.append(
                "routes: the legacy 'routes'/'route_type' keys are deprecated; use 'endpoints'/'endpoint_type'"
            )
            data["endpoints"] = list(data.get("endpoints") or []) + legacy
    if "endpoints" not in data:
        raise ConfigError("endpoints: field required")
    if data["endpoints"] is None:
        data["endpoints"] = []
    internal = {
        "version", "source", "strict", "warnings", "provider_configs", "unavailable", "target_configs",
        "target_unavailable",
    }  # fmt: skip
    known = set(GatewayConfig.model_fields) - internal
    for key in list(data):
        if key not in known:
            warnings.append(f"{key}: unknown key, ignored")
            del data[key]
    return data


def _resolve_providers(config: GatewayConfig, *, strict: bool) -> None:
    for i, ep in enumerate(config.endpoints):
        configs: list[BaseModel | None] = []
        reasons: list[str | None] = []
        for model, where in zip(ep.targets, ep.target_paths, strict=True):
            cfg, reason = _resolve_model(
                ep, model, f"endpoints[{i}].{where}", i, strict=strict, warnings=config.warnings
            )
            configs.append(cfg)
            reasons.append(reason)
        config.target_configs[ep.name] = configs
        config.target_unavailable[ep.name] = reasons
        if configs[0] is not None:
            config.provider_configs[ep.name] = configs[0]
        if all(cfg is None for cfg in configs):
            config.unavailable[ep.name] = "; ".join(r for r in reasons if r)


def _resolve_model(
    ep: EndpointConfig, model: ModelConfig, path: str, index: int, *, strict: bool, warnings: list[str]
) -> tuple[BaseModel | None, str | None]:
    """One model's provider config, validated with its secrets resolved; or None and why it can't serve."""
    from gateway.providers import get_provider_class

    try:
        provider_cls = get_provider_class(model.provider)
    except ConfigError as exc:
        raise ConfigError(f"{path}.provider: {exc}") from None
    if ep.endpoint_type not in provider_cls.endpoint_types:
        supported = ", ".join(sorted(provider_cls.endpoint_types))
        raise ConfigError(
            f"endpoints[{index}].endpoint_type: provider {model.provider!r} does not serve "
            f"{ep.endpoint_type} (it serves: {supported})"
        )
    if model.name is None and provider_cls.requires_model_name:
        raise ConfigError(f"{path}.name: field required")
    resolved: dict[str, Any] = {}
    missing: dict[str, MissingCredential] = {}
    for key, value in model.config.items():
        try:
            resolved[key] = resolve_value(value, f"{path}.config.{key}", secret=key in provider_cls.secret_fields)
        except MissingCredential as exc:
            missing[key] = exc
    try:
        # With a credential missing, still validate the rest so typos are reported for an unavailable model too.
        cfg = provider_cls.config_model.model_validate({**resolved, **dict.fromkeys(missing, "unset")})
    except pydantic.ValidationError as exc:
        raise ConfigError(_format_validation(exc, f"{path}.config")) from None
    if missing:
        if strict:
            raise ConfigError(str(next(iter(missing.values()))))
        return None, "; ".join(str(m) for m in missing.values())
    _warn_extra(cfg, f"{path}.config", warnings)
    return cfg, None


def _check_references(config: GatewayConfig, index: dict[str, int]) -> None:
    """Fallbacks and traffic-split destinations must name endpoints of the same type."""
    by_name = {ep.name: ep for ep in config.endpoints}
    for i, ep in enumerate(config.endpoints):
        for j, name in enumerate(ep.fallbacks):
            target = by_name.get(name)
            where = f"endpoints[{i}].fallbacks[{j}]"
            if target is None:
                raise ConfigError(f"{where}: unknown endpoint {name!r}")
            if name == ep.name:
                raise ConfigError(f"{where}: an endpoint cannot fall back to itself")
            if target.endpoint_type != ep.endpoint_type:
                raise ConfigError(f"{where}: {name!r} is {target.endpoint_type}, not {ep.endpoint_type}")
    route_names: set[str] = set()
    for i, route in enumerate(config.routes):
        if route.name in index or route.name in route_names:
            raise ConfigError(f"routes[{i}].name: {route.name!r} is already the name of an endpoint or route")
        route_names.add(route.name)
        for j, dest in enumerate(route.destinations):
            target = by_name.get(dest.name)
            where = f"routes[{i}].destinations[{j}].name"
            if target is None:
                raise ConfigError(f"{where}: unknown endpoint {dest.name!r}")
            if target.endpoint_type != route.task_type:
                raise ConfigError(f"{where}: {dest.name!r} is {target.endpoint_type}, not {route.task_type}")


def _check_tracking(config: GatewayConfig) -> None:
    try:
        config.tracking_settings()
    except ImportError:
        return  # tracking settings not available in this build: the section is ignored
    except pydantic.ValidationError as exc:
        raise ConfigError(_format_validation(exc, "tracking")) from None


def parse_config(raw: Any, *, source: str | None = None, strict: bool = False, text: str = "") -> GatewayConfig:
    """Validate a parsed YAML document into a GatewayConfig, or raise ConfigError naming the key path."""
    warnings: list[str] = []
    data = _normalise_top_level(raw, warnings)
    try:
        config = GatewayConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(_format_validation(exc, "")) from None
    seen: dict[str, int] = {}
    for i, ep in enumerate(config.endpoints):
        if ep.name in seen:
            raise ConfigError(
                f"endpoints[{i}].name: duplicate endpoint name {ep.name!r} (also endpoints[{seen[ep.name]}])"
            )
        seen[ep.name] = i
        _warn_extra(ep, f"endpoints[{i}]", warnings)
    _check_references(config, seen)
    _check_tracking(config)
    config.warnings = warnings
    config.source = source
    config.strict = strict
    config.version = hashlib.sha256(text.encode()).hexdigest()[:12] if text else "inline"
    _resolve_providers(config, strict=strict)
    check_upstream_urls(config)
    if config.auth is not None:
        resolve_keys(config.auth, strict=strict, warnings=config.warnings, endpoints=set(seen))
    return config


def load_config(path: str | os.PathLike[str], *, strict: bool = False) -> GatewayConfig:
    """Read and validate a YAML config file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config file ({exc.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML: {exc}") from None
    return parse_config(raw, source=str(p), strict=strict, text=text)


def config_path_from_env() -> str | None:
    for var in CONFIG_ENV_VARS:
        if os.environ.get(var):
            return os.environ[var]
    return None


def secret(value: SecretStr | None) -> str:
    """The secret's value; call only where a request to the provider is built."""
    return value.get_secret_value() if value is not None else ""
