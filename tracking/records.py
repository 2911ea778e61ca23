"""The record types that tracking stores: one TraceRecord per proxied call."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the upstream reported them; None where it did not say."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None

    @classmethod
    def from_openai(cls, data: dict[str, Any] | None) -> Usage:
        if not data:
            return cls()
        prompt = data.get("prompt_tokens")
        completion = data.get("completion_tokens")
        total = data.get("total_tokens")
        if total is None and prompt is not None and completion is not None:
            total = prompt + completion
        return cls(prompt, completion, total)


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One proxied call, finished: what was asked, what came back, and how long it took."""

    id: str
    timestamp: float  # unix seconds when the gateway received the request
    endpoint: str
    endpoint_type: str
    provider: str
    model: str  # the provider's model id from config
    route: str  # the HTTP path the client called
    stream: bool
    status: int  # HTTP status sent to the client; 499 when the client went away
    client_request_id: str | None = None
    request: dict[str, Any] | None = None  # None when content capture is off
    response: dict[str, Any] | None = None  # streamed answers are assembled into one message
    error: dict[str, Any] | None = None  # {"type", "message"}
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    response_model: str | None = None  # the model id the upstream says answered
    upstream_id: str | None = None  # the upstream's response id
    client: str | None = None  # client address
    finish_reason: str | None = None
    retries: int = 0  # upstream attempts beyond the first
    fallback: str | None = None  # the endpoint that finally answered, when a fallback was taken
    key_name: str | None = None  # the name of the gateway key the call authenticated with (auth on)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TraceRecord:
        """Inverse of `to_dict`; unknown keys are ignored so old spool files stay readable."""
        known = {k: v for k, v in data.items() if k in _FIELD_NAMES}
        usage = known.get("usage")
        known["usage"] = Usage(**usage) if isinstance(usage, dict) else Usage()
        return cls(**known)


_FIELD_NAMES = frozenset(TraceRecord.__dataclass_fields__)
