"""Content capture and redaction: what of a call's request and response may be written at all.

The writer applies a `ContentPolicy` to every record before it reaches a sink or the spool, so
the gateway hands over full records and nothing unredacted ever touches disk.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import re2  # type: ignore[import-untyped]

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
_CREDENTIAL_HINTS = ("sk-", "AIza", "AKIA", "ASIA")  # with "bearer", the start of every pattern above
# Lowercase literals that every credential pattern and credential key contains. Searched for in
# every record: RE2's DFA does it in ~2 us on a typical chat response, where `re` takes ~8 (its
# alternation tries every literal at each position starting with one of s, a, b, p, r).
_SCRUB_HINTS = re2.compile(
    b"|".join(
        re.escape(h)
        for h in (
            *(h.lower().encode() for h in _CREDENTIAL_HINTS),
            b"bearer",
            b"authorization",
            b"api-key",
            b"api_key",
            b"apikey",
            b"password",
            b"secret",
            b"access_token",
            b"refresh_token",
        )
    )
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
        redact = list(redact)
        # One alternation means one scan per string, however many rules there are; a rule with
        # global flags such as a leading (?i) cannot sit inside a group, so it is scanned alone.
        self._credentials = re.compile("|".join(f"(?:{p})" for p in CREDENTIAL_PATTERNS))
        combined: list[str] = []
        self._user_patterns: list[re.Pattern[str]] = []
        for pattern in redact:
            try:
                re.compile(f"(?:{pattern})")
                combined.append(f"(?:{pattern})")
            except re.error:
                self._user_patterns.append(re.compile(pattern))
        if combined:
            self._user_patterns.insert(0, re.compile("|".join(combined)))
        self._key_is_credential: dict[str, bool] = {}
        # Anchors and lookarounds see a string's edges differently inside JSON text (see _may_need_scrub).
        edge_sensitive = ("^", "$", "\\A", "\\Z", "(?=", "(?!", "(?<=", "(?<!")
        self._user_rules_prefilterable = not any(a in p for p in redact for a in edge_sensitive)

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
        request, response, error = self._clean(request), self._clean(response), self._clean(record.error)
        if request is record.request and response is record.response and error is record.error:
            return record  # nothing to hide: skip the copy
        return dataclasses.replace(record, request=request, response=response, error=error)

    def _clean(self, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None or not self._may_need_scrub(value):
            return value
        scrubbed: dict[str, Any] = self.scrub(value)
        return scrubbed

    def _may_need_scrub(self, value: Any) -> bool:
        """A cheap, conservative test: False only when `scrub` would certainly change nothing.

        Walking a record in Python costs ~40 us; serialising it with orjson and searching the
        text for the literals every credential rule and key starts with costs a few. The literals
        hold no character JSON escapes, so a string that holds one shows it in the JSON text.
        """
        try:
            raw = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            return True
        if _SCRUB_HINTS.search(raw.lower()) is not None:
            return True
        if not self._user_patterns:
            return False
        # A user rule can be tried on the JSON text when every string appears in it verbatim (no
        # escapes) and the rule has no anchors or lookarounds (a string's edge is a quote there). A match
        # that spans two strings is a false alarm, which only costs the full walk.
        if not self._user_rules_prefilterable or b"\\" in raw:
            return True
        text = raw.decode()
        return any(pattern.search(text) is not None for pattern in self._user_patterns)

    def __call__(self, record: TraceRecord) -> TraceRecord:
        return self.apply(record)

    def scrub(self, value: Any) -> Any:
        """A copy of a JSON value with credential keys and matching text replaced by [REDACTED]."""
        # Hot path (every record, on the event loop): exact type checks and cached key verdicts.
        if type(value) is str:
            return self._scrub_text(value)
        if isinstance(value, Mapping):
            return {k: REDACTED if self._is_credential_key(k) else self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        if isinstance(value, str):
            return self._scrub_text(value)
        return value

    def _scrub_text(self, text: str) -> str:
        # Each credential pattern starts with one of these literals; a substring test in C skips
        # the regex for the strings that cannot match, which is nearly all of them.
        if any(hint in text for hint in _CREDENTIAL_HINTS) or "bearer" in text.lower():
            text = self._credentials.sub(REDACTED, text)
        for pattern in self._user_patterns:
            text = pattern.sub(REDACTED, text)
        return text

    def _is_credential_key(self, key: Any) -> bool:
        if not isinstance(key, str):
            return False
        verdict = self._key_is_credential.get(key)
        if verdict is None:
            verdict = _CREDENTIAL_KEY.match(key) is not None
            if len(self._key_is_credential) < 10_000:  # bounded: keys can be user-controlled
                self._key_is_credential[key] = verdict
        return verdict
