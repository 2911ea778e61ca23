"""The gateway's error tree, and the one boundary where httpx errors become gateway errors.

GatewayError                     status  type
  InvalidRequest                 400     invalid_request_error   param= names the field
  AuthenticationFailed           401     authentication_error
  PermissionDenied               403     permission_error
  EndpointNotFound               404     not_found_error         unknown name or wrong endpoint type
  PayloadTooLarge                413     invalid_request_error
  RateLimited                    429     rate_limit_error        sets Retry-After
  EndpointUnavailable            503     service_unavailable     e.g. its credential is not set
  UpstreamError                  502     upstream_error
    UpstreamStatusError          4xx     the upstream's status, message cleaned
    UpstreamUnavailable          502     connect/read/protocol failure, garbage body
    UpstreamTimeout              504     timeout
ConfigError(ValueError)          -       not HTTP; the message starts with the key path

Only GatewayError messages reach clients; anything else becomes a generic 500 and a logged traceback.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import aiohttp
import httpx
import pydantic


class ConfigError(ValueError):
    """A config file or value is invalid; the message starts with the key path."""


class GatewayError(Exception):
    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers = dict(headers or {})
        if status_code is not None:
            self.status_code = status_code  # type: ignore[misc]  # per-instance for upstream 4xx

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}


class InvalidRequest(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class AuthenticationFailed(GatewayError):
    status_code = 401
    error_type = "authentication_error"


class PermissionDenied(GatewayError):
    status_code = 403
    error_type = "permission_error"


class EndpointNotFound(GatewayError):
    status_code = 404
    error_type = "not_found_error"


class PayloadTooLarge(GatewayError):
    status_code = 413
    error_type = "invalid_request_error"


class RateLimited(GatewayError):
    status_code = 429
    error_type = "rate_limit_error"


class EndpointUnavailable(GatewayError):
    status_code = 503
    error_type = "service_unavailable"


class UpstreamError(GatewayError):
    status_code = 502
    error_type = "upstream_error"


class UpstreamStatusError(UpstreamError):
    """The upstream answered 4xx; passed through with its status and a cleaned message."""


class UpstreamUnavailable(UpstreamError):
    status_code = 502


class UpstreamTimeout(UpstreamError):
    status_code = 504
    error_type = "timeout_error"


def client_status(exc: GatewayError, *, mlflow: bool) -> int:
    """The status a client gets: MLflow's routes answer 422 for an invalid body, as its clients expect."""
    return 422 if mlflow and isinstance(exc, InvalidRequest) else exc.status_code


def invalid_request_from(exc: pydantic.ValidationError, *, prefix: str = "") -> InvalidRequest:
    """The first validation error, as a 400 whose message and param name the field."""
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(part) for part in err["loc"] if part != "__root__")
    field = f"{prefix}{loc}" if loc else (prefix.rstrip(".") or "body")
    msg = err["msg"]
    if err["type"] == "missing":
        msg = "field required"
    elif err["type"] == "extra_forbidden":
        msg = "unknown field"
    return InvalidRequest(f"{field}: {msg}", param=field)


# Anything that looks like a credential is cut from upstream messages before they reach a client.
_SECRET_PATTERNS = re.compile(
    r"(sk-[A-Za-z0-9_\-]{4,}|sk-ant-[A-Za-z0-9_\-]+|Bearer\s+\S+|AKIA[0-9A-Z]{12,}|key[=:]\s*\S+)",
    re.IGNORECASE,
)


def clean_message(message: str, secrets: tuple[str, ...] = ()) -> str:
    for secret in secrets:
        if secret:
            message = message.replace(secret, "[REDACTED]")
    message = _SECRET_PATTERNS.sub("[REDACTED]", message)
    return message[:2000]


@contextlib.contextmanager
def map_upstream_errors(provider: str) -> Iterator[None]:
    """Translate transport failures into UpstreamError; the only place that names httpx/aiohttp errors."""
    try:
        yield
    except GatewayError:
        raise
    except (TimeoutError, httpx.TimeoutException) as exc:  # aiohttp's timeouts are TimeoutErrors
        raise UpstreamTimeout(f"upstream {provider} timed out", code="upstream_timeout") from exc
    except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
        raise UpstreamUnavailable(f"upstream {provider} failed: {_describe(exc)}", code="upstream_unavailable") from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError | httpx.ConnectError):
        return "connection failed"
    if isinstance(exc, aiohttp.ServerDisconnectedError | httpx.RemoteProtocolError):
        return "connection closed before the response was complete"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "response body was cut short"
    return type(exc).__name__
