"""OpenAI and Azure OpenAI: the wire format is already ours, so bodies pass through."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from gateway.providers import register
from gateway.providers.base import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    HTTPProvider,
    StreamState,
    UpstreamRequest,
)
from gateway.providers.common import openai_event
from gateway.streaming import SSEEvent


class OpenAIConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    openai_api_key: SecretStr
    openai_api_type: Literal["openai", "azure", "azuread", "azure_ad"] = "openai"
    openai_api_base: str | None = None
    openai_api_version: str | None = None
    openai_deployment_name: str | None = None
    openai_organization: str | None = None

    @model_validator(mode="after")
    def _azure_needs_more(self) -> OpenAIConfig:
        if self.openai_api_type != "openai":
            for key in ("openai_api_base", "openai_api_version", "openai_deployment_name"):
                if not getattr(self, key):
                    raise ValueError(f"{key} is required when openai_api_type is {self.openai_api_type!r}")
        return self


_PATHS = {CHAT: "/chat/completions", COMPLETIONS: "/completions", EMBEDDINGS: "/embeddings"}


@register("openai")
class OpenAIProvider(HTTPProvider):
    name = "openai"
    endpoint_types = frozenset({CHAT, COMPLETIONS, EMBEDDINGS})
    config_model = OpenAIConfig
    secret_fields = frozenset({"openai_api_key"})
    passthrough = True
    config: OpenAIConfig
    _targets: dict[str, tuple[str, dict[str, str]]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._targets = {}

    def _target(self, endpoint_type: str) -> tuple[str, dict[str, str]]:
        """URL and headers for one endpoint type; the same for every call, so built once."""
        cached = self._targets.get(endpoint_type)
        if cached is not None:
            return cached
        cfg = self.config
        key = cfg.openai_api_key.get_secret_value()
        if cfg.openai_api_type == "openai":
            url = (cfg.openai_api_base or "https://api.openai.com/v1").rstrip("/") + _PATHS[endpoint_type]
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            if cfg.openai_organization:
                headers["OpenAI-Organization"] = cfg.openai_organization
        else:
            base = (cfg.openai_api_base or "").rstrip("/")
            url = (
                f"{base}/openai/deployments/{cfg.openai_deployment_name}{_PATHS[endpoint_type]}"
                f"?api-version={cfg.openai_api_version}"
            )
            if cfg.openai_api_type == "azure":
                headers = {"api-key": key, "Content-Type": "application/json"}
            else:  # azuread: the key is an Entra ID token
                headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self._targets[endpoint_type] = (url, headers)
        return url, headers

    def _request(self, endpoint_type: str, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        body = {**body, "model": self.model}
        if stream:
            body["stream"] = True
            # Ask for usage on streams so token counts always reach tracking.
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        url, headers = self._target(endpoint_type)
        return UpstreamRequest(url, body, headers)

    def chat_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        return self._request(CHAT, body, stream)

    def completions_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        return self._request(COMPLETIONS, body, stream)

    def embeddings_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        return self._request(EMBEDDINGS, body, stream)

    def chat_response(self, data: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(data["choices"], list):
            raise TypeError("choices is not a list")
        return data

    completions_response = chat_response

    def embeddings_response(self, data: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(data["data"], list):
            raise TypeError("data is not a list")
        return data

    def chat_chunk(self, event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
        data = openai_event(self, event, state)
        return [] if data is None else [data]

    completions_chunk = chat_chunk
