"""Services that speak OpenAI's wire format: one translator, one registration line per service.

Each service differs only in its default base URL, the config key holding its credential, what it
serves, and the OpenAI parameters it cannot honour (refused with a 400 naming the parameter).
Streams are normalised (tool-call `index`, and `id`/`type`/`name` sent once) because several of
these services repeat them, which breaks the OpenAI SDK's accumulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr

from gateway.errors import InvalidRequest
from gateway.providers import register
from gateway.providers.base import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    HTTPProvider,
    StreamState,
    UpstreamRequest,
)
from gateway.providers.common import (
    ToolCallNormalizer,
    completion_chunk_from_chat,
    completion_from_chat,
    openai_event,
    prompt_messages,
    refuse_images,
)
from gateway.streaming import SSEEvent

ALL = frozenset({CHAT, COMPLETIONS, EMBEDDINGS})
_PATHS = {CHAT: "/chat/completions", COMPLETIONS: "/completions", EMBEDDINGS: "/embeddings"}


class CompatibleConfig(BaseModel):
    """MLflow's `_OpenAICompatibleConfig`: `api_key`, and `api_base` over the service's default."""

    model_config = ConfigDict(extra="allow")
    api_key: SecretStr
    api_base: str | None = None


class LocalServerConfig(CompatibleConfig):
    """Servers you run yourself (ollama, vllm) often need no key."""

    api_key: SecretStr | None = None  # type: ignore[assignment]


class GenericConfig(LocalServerConfig):
    api_base: str  # type: ignore[assignment]  # no default: there is no one service to point at


class MistralConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    mistral_api_key: SecretStr


class TogetherAIConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    togetherai_api_key: SecretStr


class OpenAICompatibleProvider(HTTPProvider):
    """Base of the family; a subclass is a handful of class variables."""

    name = "openai-compatible"
    endpoint_types = ALL
    config_model: ClassVar[type[BaseModel]] = GenericConfig
    secret_fields = frozenset({"api_key"})
    default_api_base: ClassVar[str] = ""
    key_field: ClassVar[str] = "api_key"
    # Served through the upstream's chat API: it has no /completions.
    completions_via_chat: ClassVar[bool] = False
    # OpenAI parameters the service rejects or ignores: refused here with a clear 400.
    unsupported_params: ClassVar[tuple[str, ...]] = ()
    # OpenAI name -> the service's name for the same parameter.
    renamed_params: ClassVar[Mapping[str, str]] = {}
    max_n: ClassVar[int | None] = None
    # Whether the service understands stream_options.include_usage (else it must not be sent).
    stream_usage_option: ClassVar[bool] = True
    vision: ClassVar[bool] = True

    # ---- requests -----------------------------------------------------------------------------

    def _base(self) -> str:
        base = getattr(self.config, "api_base", None) or self.default_api_base
        return base.rstrip("/")

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = getattr(self.config, self.key_field, None)
        if key is not None and key.get_secret_value():
            headers["Authorization"] = f"Bearer {key.get_secret_value()}"
        return headers

    def _payload(self, body: dict[str, Any], stream: bool) -> dict[str, Any]:
        self.unsupported(body, self.unsupported_params)
        if self.max_n is not None and (body.get("n") or 1) > self.max_n:
            raise InvalidRequest(f"n: provider {self.name!r} returns at most {self.max_n} choice(s)", param="n")
        payload = {self.renamed_params.get(k, k): v for k, v in body.items() if v is not None}
        payload["model"] = self.model
        payload.pop("stream", None)
        payload.pop("stream_options", None)
        if stream:
            payload["stream"] = True
            if self.stream_usage_option:
                # Ask for usage on streams so token counts always reach tracking.
                payload["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return payload

    def chat_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        if not self.vision:
            refuse_images(body["messages"], self.name)
        return UpstreamRequest(self._base() + _PATHS[CHAT], self._payload(body, stream), self._headers())

    def completions_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        if self.completions_via_chat:
            rest = {k: v for k, v in body.items() if k not in ("prompt", "suffix", "echo", "best_of")}
            self.unsupported(body, ("echo", "best_of"))
            return self.chat_request({**rest, "messages": prompt_messages(body, self.name)}, stream)
        return UpstreamRequest(self._base() + _PATHS[COMPLETIONS], self._payload(body, stream), self._headers())

    def embeddings_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        payload = {self.renamed_params.get(k, k): v for k, v in body.items() if v is not None}
        payload["model"] = self.model
        return UpstreamRequest(self._base() + _PATHS[EMBEDDINGS], payload, self._headers())

    # ---- responses ----------------------------------------------------------------------------

    def chat_response(self, data: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(data["choices"], list):
            raise TypeError("choices is not a list")
        data.setdefault("object", "chat.completion")
        if not data.get("usage") and (data.get("x_groq") or {}).get("usage"):
            data["usage"] = data["x_groq"]["usage"]
        return data

    def completions_response(self, data: dict[str, Any]) -> dict[str, Any]:
        if self.completions_via_chat:
            return completion_from_chat(self.chat_response(data))
        if not isinstance(data["choices"], list):
            raise TypeError("choices is not a list")
        return data

    def embeddings_response(self, data: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(data["data"], list):
            raise TypeError("data is not a list")
        data.setdefault("object", "list")
        data.setdefault("model", self.model)
        # The OpenAI SDK requires `usage`; some services (Together) leave it out.
        data.setdefault("usage", {"prompt_tokens": 0, "total_tokens": 0})
        return data

    def chat_chunk(self, event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
        data = openai_event(self, event, state)
        if data is None:
            return []
        groq_usage = (data.get("x_groq") or {}).get("usage")
        if groq_usage and not data.get("usage"):  # groq reports usage under x_groq
            state.usage = data["usage"] = groq_usage
        state.id = state.id or data.get("id", "")
        state.model = state.model or data.get("model", "")
        dropped = False
        for choice in data.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("tool_calls"):
                tools = state.extra.setdefault("tools", {})
                normalizer = tools.setdefault(choice.get("index", 0), ToolCallNormalizer())
                calls = normalizer.delta(delta["tool_calls"])
                if calls:
                    delta["tool_calls"] = calls
                else:
                    del delta["tool_calls"]
                    dropped = not delta and not choice.get("finish_reason")
        data.pop("x_groq", None)
        if dropped and len(data["choices"]) == 1 and not data.get("usage"):
            return []  # the event was only an empty arguments delta
        return [data]

    def completions_chunk(self, event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
        chunks = self.chat_chunk(event, state)
        if not self.completions_via_chat:
            return chunks
        return [c for c in map(completion_chunk_from_chat, chunks) if c is not None]


@register("groq")
class GroqProvider(OpenAICompatibleProvider):
    name = "groq"
    endpoint_types = frozenset({CHAT, COMPLETIONS})
    config_model = CompatibleConfig
    default_api_base = "https://api.groq.com/openai/v1"
    completions_via_chat = True
    unsupported_params = ("logprobs", "top_logprobs", "logit_bias")
    max_n = 1


@register("deepseek")
class DeepSeekProvider(OpenAICompatibleProvider):
    name = "deepseek"
    endpoint_types = frozenset({CHAT, COMPLETIONS})
    config_model = CompatibleConfig
    default_api_base = "https://api.deepseek.com/v1"
    completions_via_chat = True
    unsupported_params = ("logit_bias", "seed")
    max_n = 1
    vision = False  # deepseek-chat and deepseek-reasoner read text only


@register("xai")
class XAIProvider(OpenAICompatibleProvider):
    name = "xai"
    config_model = CompatibleConfig
    default_api_base = "https://api.x.ai/v1"


@register("openrouter")
class OpenRouterProvider(OpenAICompatibleProvider):
    name = "openrouter"
    config_model = CompatibleConfig
    default_api_base = "https://openrouter.ai/api/v1"


@register("ollama")
class OllamaProvider(OpenAICompatibleProvider):
    name = "ollama"
    config_model = LocalServerConfig
    default_api_base = "http://localhost:11434/v1"

    def _headers(self) -> dict[str, str]:
        headers = super()._headers()
        # MLflow's placeholder key for a keyless Ollama: not a credential, so not sent.
        if headers.get("Authorization") == "Bearer ollama":
            del headers["Authorization"]
        return headers


@register("vllm")
class VLLMProvider(OpenAICompatibleProvider):
    name = "vllm"
    config_model = LocalServerConfig
    default_api_base = "http://localhost:8000/v1"


register("openai-compatible")(OpenAICompatibleProvider)


@register("mistral")
class MistralProvider(OpenAICompatibleProvider):
    name = "mistral"
    config_model = MistralConfig
    secret_fields = frozenset({"mistral_api_key"})
    key_field = "mistral_api_key"
    default_api_base = "https://api.mistral.ai/v1"
    completions_via_chat = True  # as MLflow does; /fim/completions is fill-in-the-middle only
    unsupported_params = ("logit_bias", "logprobs", "top_logprobs", "user", "service_tier")
    renamed_params = {"seed": "random_seed", "max_completion_tokens": "max_tokens", "dimensions": "output_dimension"}
    # Mistral rejects unknown fields, and reports usage in its last chunk anyway.
    stream_usage_option = False

    def chat_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        up = super().chat_request(body, stream)
        if up.json.get("tool_choice") == "required":
            up.json["tool_choice"] = "any"  # Mistral's name for "call at least one tool"
        return up


@register("togetherai")
class TogetherAIProvider(OpenAICompatibleProvider):
    name = "togetherai"
    config_model = TogetherAIConfig
    secret_fields = frozenset({"togetherai_api_key"})
    key_field = "togetherai_api_key"
    default_api_base = "https://api.together.xyz/v1"
