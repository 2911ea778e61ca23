"""Content capture and redaction: what of a call's request and response may be written at all.

The writer applies a `ContentPolicy` to every record before it reaches a sink or the spool, so
the gateway hands over full records and nothing unredacted ever touches disk.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from tracking.config import Capture, TrackingSettings
from tracking.records import TraceRecord

REDACTED = "[REDACTED]"

# Credentials are never captured, whatever the config says: keys that name one lose their value,
# and strings shaped like a provider key or a bearer token are masked wherever they appear.
_CREDENTIAL_KEY = re.compile(
    r"^(authorization|proxy-authorization|x-api-key|api-key|api_key|apikey|.*_api_key|"
    r"password|secret|client_secret|access_token|refresh_token|x-goog-api-key)$",
    re.IGNORECASE,
)
CREDENTIAL_PATTERNS: tuple[str, ...] = (
    r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}",  # OpenAI / Anthropic keys
    r"\bAIza[0-9A-Za-z_\-]{30,}",  # Google API keys
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
    r"\b(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}",
)

# Metadata mode keeps the shape of a call (params, ids, usage, finish reasons) but not its text.
_CONTENT_REQUEST_KEYS = frozenset({"messages", "prompt", "input", "suffix", "instructions", "system"})
_KEPT_RESPONSE_KEYS = frozenset({"id", "object", "created", "model", "usage", "system_fingerprint"})


def metadata_request(request: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in request.items() if k not in _CONTENT_REQUEST_KEYS}


def metadata_response(response: Mapping[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in response.items() if k in _KEPT_RESPONSE_KEYS}
    choices = response.get("choices")
    if isinstance(choices, list):
        kept["choices"] = [{k: c.get(k) for k in ("index", "finish_reason")} for c in choices if isinstance(c, Mapping)]
    data = response.get("data")
    if isinstance(data, list):
        kept["data_count"] = len(data)  # embeddings: how many vectors, not the vectors
    return kept


class ContentPolicy:
    """Applies capture mode and redaction rules to records; pure, so it can run in any thread."""

    def __init__(
        self,
        *,
        capture: Capture = "full",
        redact: Iterable[str] = (),
        endpoints: Mapping[str, Capture] | None = None,
    ) -> None:
        self.capture = capture
        self.endpoints = dict(endpoints or {})
        # One alternation means one scan per string, however many rules there are; a rule with
        # global flags such as a leading (?i) cannot sit inside a group, so it is scanned alone.
        combined: list[str] = []
        self._patterns: list[re.Pattern[str]] = []
        for pattern in (*CREDENTIAL_PATTERNS, *redact):
            try:
                re.compile(f"(?:{pattern})")
                combined.append(f"(?:{pattern})")
            except re.error:
                self._patterns.append(re.compile(pattern))
        self._patterns.insert(0, re.compile("|".join(combined)))

    @classmethod
    def from_settings(cls, settings: TrackingSettings) -> ContentPolicy:
        endpoints = {name: s.capture for name, s in settings.endpoints.items() if s.capture is not None}
        return cls(capture=settings.capture, redact=settings.redact, endpoints=endpoints)

    def capture_for(self, endpoint: str) -> Capture:
        return self.endpoints.get(endpoint, self.capture)

    def apply(self, record: TraceRecord) -> TraceRecord:
        request, response = record.request, record.response
        if self.capture_for(record.endpoint) == "metadata":
            request = None if request is None else metadata_request(request)
            response = None if response is None else metadata_response(response)
        return dataclasses.replace(
            record,
            request=self.scrub(request),
            response=self.scrub(response),
            error=self.scrub(record.error),
        )

    def __call__(self, record: TraceRecord) -> TraceRecord:
        return self.apply(record)

    def scrub(self, value: Any) -> Any:
        """A copy of a JSON value with credential keys and matching text replaced by [REDACTED]."""
        if isinstance(value, str):
            for pattern in self._patterns:
                value = pattern.sub(REDACTED, value)
            return value
        if isinstance(value, Mapping):
            return {
                k: REDACTED if isinstance(k, str) and _CREDENTIAL_KEY.match(k) else self.scrub(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        return value
