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

from gateway.errors import ConfigError

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


class Timeouts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    connect: float = Field(10.0, gt=0)
    total: float = Field(600.0, gt=0)


class EndpointConfig(_Model):
    name: str
    endpoint_type: EndpointType = Field(validation_alias=pydantic.AliasChoices("endpoint_type", "route_type"))
    model: ModelConfig
    limit: Limit | None = None
    timeout: Timeouts = Field(default_factory=Timeouts)

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


class GatewaySettings(BaseModel):
    """Our top-level additions (all optional)."""

    model_config = ConfigDict(extra="forbid")
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0)
    # Upstream client: aiohttp (fast under concurrency) or httpx (lets respx mock upstreams in tests).
    transport: Literal["aiohttp", "httpx"] = "aiohttp"


class GatewayConfig(BaseModel):
    """A loaded config: endpoints plus our settings, with per-endpoint resolved provider config."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    endpoints: list[EndpointConfig]
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    tracking: dict[str, Any] = Field(default_factory=dict)
    version: str = ""
    source: str | None = None
    warnings: list[str] = Field(default_factory=list)
    # endpoint name -> provider config (validated, secrets resolved); absent when unavailable
    provider_configs: dict[str, BaseModel] = Field(default_factory=dict)
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


def _format_validation(exc: pydantic.ValidationError, prefix: str) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = prefix
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        msg = "field required" if err["type"] == "missing" else err["msg"]
        lines.append(f"{loc}: {msg}")
    return "\n".join(lines)


def _normalise_top_level(raw: Any, warnings: list[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError("(top level): expected a mapping with an 'endpoints' list")
    data = dict(raw)
    if "routes" in data:
        routes = data.pop("routes") or []
        if any(isinstance(r, dict) and "destinations" in r for r in routes):
            raise ConfigError(
                "routes: traffic-split routes (MLflow 3 'destinations') are not supported yet; "
                "declare each destination as an endpoint"
            )
        warnings.append("routes: the legacy 'routes'/'route_type' keys are deprecated; use 'endpoints'/'endpoint_type'")
        data["endpoints"] = list(data.get("endpoints") or []) + list(routes)
    if "endpoints" not in data:
        raise ConfigError("endpoints: field required")
    if data["endpoints"] is None:
        data["endpoints"] = []
    known = set(GatewayConfig.model_fields) - {"version", "source", "warnings", "provider_configs", "unavailable"}
    for key in list(data):
        if key not in known:
            warnings.append(f"{key}: unknown key, ignored")
            del data[key]
    return data


def _resolve_providers(config: GatewayConfig, *, strict: bool) -> None:
    from gateway.providers import get_provider_class

    for i, ep in enumerate(config.endpoints):
        path = f"endpoints[{i}].model"
        try:
            provider_cls = get_provider_class(ep.model.provider)
        except ConfigError as exc:
            raise ConfigError(f"{path}.provider: {exc}") from None
        if ep.endpoint_type not in provider_cls.endpoint_types:
            supported = ", ".join(sorted(provider_cls.endpoint_types))
            raise ConfigError(
                f"endpoints[{i}].endpoint_type: provider {ep.model.provider!r} does not serve "
                f"{ep.endpoint_type} (it serves: {supported})"
            )
        if ep.model.name is None and provider_cls.requires_model_name:
            raise ConfigError(f"{path}.name: field required")
        resolved: dict[str, Any] = {}
        missing: dict[str, MissingCredential] = {}
        for key, value in ep.model.config.items():
            try:
                resolved[key] = resolve_value(value, f"{path}.config.{key}", secret=key in provider_cls.secret_fields)
            except MissingCredential as exc:
                missing[key] = exc
        try:
            if missing:
                # Still validate what we have, so typos are reported even for an unavailable endpoint.
                provider_cls.config_model.model_validate({**resolved, **dict.fromkeys(missing, "unset")})
            else:
                config.provider_configs[ep.name] = provider_cls.config_model.model_validate(resolved)
        except pydantic.ValidationError as exc:
            raise ConfigError(_format_validation(exc, f"{path}.config")) from None
        for m in missing.values():
            if strict:
                raise ConfigError(str(m))
            config.unavailable[ep.name] = str(m)
        cfg = config.provider_configs.get(ep.name)
        if cfg is not None:
            _warn_extra(cfg, f"{path}.config", config.warnings)


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
    _check_tracking(config)
    config.warnings = warnings
    config.source = source
    config.version = hashlib.sha256(text.encode()).hexdigest()[:12] if text else "inline"
    _resolve_providers(config, strict=strict)
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
