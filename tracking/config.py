"""The `tracking:` section of the gateway YAML. Every key is optional and the defaults are safe.

```yaml
tracking:
  sink: sqlite                    # shorthand: none | sqlite | jsonl | postgresql | otlp | mlflow, or a list
  sinks:                          # or the full form, several at once
    - {type: sqlite, path: ./llm-gateway-traces.db}
    - {type: jsonl, path: ./traces/traces.jsonl, max_bytes: 104857600, backups: 5}
    - {type: postgresql, dsn: $TRACKING_PG_DSN}
    - {type: otlp, endpoint: http://127.0.0.1:4318/v1/traces}
    - {type: mlflow, tracking_uri: http://127.0.0.1:5000, experiment: llm-gateway}
  batch_size: 1000                # records per sink write
  flush_interval: 0.1             # seconds a record may wait for its batch to fill
  queue_size: 10000               # in-memory records before spilling to the spool
  spool_dir: ./llm-gateway-spool  # null: no spool (records are dropped when the sink fails)
  capture: full                   # full | metadata (no prompts or answers)
  redact: ['\\b\\d{3}-\\d{2}-\\d{4}\\b']   # regexes replaced by [REDACTED] before anything is written
  endpoints:
    chat: {capture: metadata}     # per-endpoint override
```
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    field_validator,
    model_validator,
)

from tracking.store import DEFAULT_DB_PATH

Capture = Literal["full", "metadata"]
_ENV_REF = re.compile(r"^\$(?:\{(\w+)\}|(\w+))$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SQLiteSinkSettings(_Strict):
    type: Literal["sqlite"] = "sqlite"
    path: str = DEFAULT_DB_PATH


class JsonlSinkSettings(_Strict):
    type: Literal["jsonl"] = "jsonl"
    path: str = "llm-gateway-traces.jsonl"
    max_bytes: PositiveInt = 100 * 1024 * 1024  # rotate when the current file would pass this size
    backups: int = Field(default=5, ge=0)  # rotated files kept: traces.jsonl.1 ... .N


class PostgresSinkSettings(_Strict):
    type: Literal["postgresql"] = "postgresql"
    dsn: SecretStr  # holds the password: SecretStr keeps it out of reprs and logs
    table: str = Field(default="traces", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @field_validator("dsn", mode="before")
    @classmethod
    def _resolve_env(cls, value: Any) -> Any:
        # The gateway resolves $VAR in model configs; do the same here so a DSN never sits in the YAML.
        return _resolve_env_secret(value)


def _resolve_env_secret(value: Any) -> Any:
    """`$VAR` / `${VAR}` -> the variable's value, so a secret never sits in the YAML."""
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if isinstance(raw, str) and (match := _ENV_REF.match(raw.strip())):
        name = match.group(1) or match.group(2)
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]
    return value


class OtlpSinkSettings(_Strict):
    type: Literal["otlp"] = "otlp"
    endpoint: str | None = None  # e.g. http://127.0.0.1:4318/v1/traces; None: $OTEL_EXPORTER_OTLP_*ENDPOINT
    headers: dict[str, SecretStr] = Field(default_factory=dict)  # values may be $VAR; may hold tokens
    timeout: PositiveFloat = 10.0
    compression: Literal["none", "gzip", "deflate"] = "none"
    service_name: str = "llm-gateway"
    resource_attributes: dict[str, str | int | float | bool] = Field(default_factory=dict)
    capture_content: bool = True  # gen_ai.input/output.messages, after capture mode and redaction

    @field_validator("headers", mode="before")
    @classmethod
    def _resolve_env(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: _resolve_env_secret(v) for k, v in value.items()}
        return value


class MlflowSinkSettings(_Strict):
    type: Literal["mlflow"] = "mlflow"
    tracking_uri: str = "http://127.0.0.1:5000"
    experiment: str = "llm-gateway"  # by name; created when missing
    experiment_id: str | None = None  # takes precedence over `experiment`
    token: SecretStr | None = None  # sent as a bearer token; may be $VAR (e.g. $MLFLOW_TRACKING_TOKEN)
    timeout: PositiveFloat = 10.0
    capture_content: bool = True

    @field_validator("token", mode="before")
    @classmethod
    def _resolve_env(cls, value: Any) -> Any:
        return _resolve_env_secret(value)


class NoneSinkSettings(_Strict):
    type: Literal["none"] = "none"


SinkSettings = Annotated[
    SQLiteSinkSettings
    | JsonlSinkSettings
    | PostgresSinkSettings
    | OtlpSinkSettings
    | MlflowSinkSettings
    | NoneSinkSettings,
    Field(discriminator="type"),
]


class EndpointTrackingSettings(_Strict):
    capture: Capture | None = None


class TrackingSettings(_Strict):
    """How calls are recorded. Embedded in the gateway config as `tracking:`."""

    sinks: list[SinkSettings] = Field(default_factory=lambda: [SQLiteSinkSettings()])
    batch_size: PositiveInt = 1000
    flush_interval: PositiveFloat = 0.1
    queue_size: PositiveInt = 10_000
    spool_dir: str | None = "llm-gateway-spool"
    spool_max_bytes: PositiveInt = 1024**3  # past this, spilled records are dropped (and counted)
    capture: Capture = "full"
    redact: list[str] = Field(default_factory=list)
    endpoints: dict[str, EndpointTrackingSettings] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _sink_shorthand(cls, data: Any) -> Any:
        """`sink: sqlite` / `sink: [sqlite, jsonl]` / `sink: none` are short for `sinks:`."""
        if not isinstance(data, Mapping) or "sink" not in data:
            return data
        if "sinks" in data:
            raise ValueError("give either 'sink' or 'sinks', not both")
        data = dict(data)
        sink = data.pop("sink")
        items = sink if isinstance(sink, list) else [sink]
        data["sinks"] = [{"type": item} if isinstance(item, str) else item for item in items]
        return data

    @field_validator("sinks")
    @classmethod
    def _drop_none(cls, sinks: list[Any]) -> list[Any]:
        return [s for s in sinks if s.type != "none"]

    @field_validator("redact")
    @classmethod
    def _compile(cls, patterns: list[str]) -> list[str]:
        for i, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"redact[{i}]: invalid regular expression {pattern!r}: {exc}") from None
        return patterns

    def capture_for(self, endpoint: str) -> Capture:
        """The capture mode for one endpoint: its override, else the global one."""
        override = self.endpoints.get(endpoint)
        return override.capture if override is not None and override.capture is not None else self.capture

    def with_endpoint_capture(self, overrides: Mapping[str, Capture | None]) -> TrackingSettings:
        """A copy with per-endpoint capture modes added (the gateway passes each endpoint's own setting).

        `None` values are ignored, so the caller can pass every endpoint without filtering.
        """
        endpoints = dict(self.endpoints)
        for name, capture in overrides.items():
            if capture is not None:
                endpoints[name] = EndpointTrackingSettings(capture=capture)
        return self.model_copy(update={"endpoints": endpoints})
