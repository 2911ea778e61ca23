"""`provider: python`: a class of yours serves the endpoint in-process (MLflow's pyfunc, for the gateway).

    model:
      provider: python
      name: faq-bot                      # optional; shown as the response's `model`
      config:
        class: my_package.models:FaqModel
        answers_file: /srv/faq.yaml      # any other key is handed to load_context

The class is built with no arguments, once per endpoint. Its methods (all optional except the one
the endpoint type needs; `async def` or plain `def`, plain ones run in a worker thread):

    async def load_context(self, config: dict) -> None      # once, before the first call
    async def chat(self, body: dict) -> dict | str          # llm/v1/chat
    async def chat_stream(self, body: dict)                  # async generator of str | chunk dict
    async def completions(self, body: dict) -> dict | str    # llm/v1/completions
    async def completions_stream(self, body: dict)           # async generator of str | chunk dict
    async def embeddings(self, body: dict) -> dict | list[list[float]]
    async def aclose(self) -> None                           # on shutdown or reload

`body` is the client's OpenAI-shaped request. A `str` answer is wrapped into an OpenAI response
(or chunk); a dict is taken as the OpenAI response itself. Raise gateway.errors.InvalidRequest for
a bad request (400); any other exception is a 502 that names the class, never its message.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.config import EndpointConfig
from gateway.errors import ConfigError, GatewayError, InvalidRequest, UpstreamUnavailable
from gateway.providers import register
from gateway.providers.base import CHAT, COMPLETIONS, EMBEDDINGS, ProviderResponse, StreamChunk, StreamState
from gateway.providers.common import chunk, now

logger = logging.getLogger("gateway.providers.python")
METHODS = {CHAT: "chat", COMPLETIONS: "completions", EMBEDDINGS: "embeddings"}


def import_class(path: str) -> type[Any]:
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{path!r} is not 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r} ({exc})") from None
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ValueError(f"{module_name!r} has no attribute {attr!r}")
    if not inspect.isclass(obj):
        raise ValueError(f"{path!r} is not a class")
    return obj


class PythonConfig(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    class_: str = Field(alias="class")

    @field_validator("class_")
    @classmethod
    def _importable(cls, value: str) -> str:
        import_class(value)  # a typo fails at load, naming the key, not at the first call
        return value


@register("python")
class PythonProvider:
    name: ClassVar[str] = "python"
    endpoint_types: ClassVar[frozenset[str]] = frozenset({CHAT, COMPLETIONS, EMBEDDINGS})
    config_model: ClassVar[type[BaseModel]] = PythonConfig
    secret_fields: ClassVar[frozenset[str]] = frozenset()
    requires_model_name: ClassVar[bool] = False

    def __init__(self, endpoint: EndpointConfig, config: PythonConfig, client: Any = None) -> None:
        self.endpoint = endpoint
        self.class_path = config.class_
        cls = import_class(config.class_)
        method = METHODS[endpoint.endpoint_type]
        if not callable(getattr(cls, method, None)):
            raise ConfigError(
                f"endpoint {endpoint.name!r}: {config.class_} has no {method}() method, "
                f"which a {endpoint.endpoint_type} endpoint needs"
            )
        self.instance = cls()
        self.options = dict(config.model_extra or {})
        self.model = endpoint.model.name or cls.__name__
        self._loaded = False
        self._lock = asyncio.Lock()

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if inspect.iscoroutinefunction(fn):
            return await fn(*args)
        return await asyncio.to_thread(fn, *args)

    async def _ready(self) -> None:
        if self._loaded:
            return
        async with self._lock:
            if not self._loaded:
                load = getattr(self.instance, "load_context", None)
                if load is not None:
                    with self._errors("load_context"):
                        await self._call(load, dict(self.options))
                self._loaded = True

    def _errors(self, method: str) -> Any:
        return _UserCode(self.class_path, method)

    async def invoke(self, endpoint_type: str, body: dict[str, Any]) -> ProviderResponse:
        await self._ready()
        method = METHODS[endpoint_type]
        with self._errors(method):
            result = await self._call(getattr(self.instance, method), body)
        with self._errors(method):  # a malformed answer is the class's fault too
            return ProviderResponse(self._response(endpoint_type, result))

    def _response(self, endpoint_type: str, result: Any) -> dict[str, Any]:
        if endpoint_type == EMBEDDINGS:
            if isinstance(result, dict):
                return result
            return {
                "object": "list",
                "model": self.model,
                "data": [{"object": "embedding", "index": i, "embedding": list(v)} for i, v in enumerate(result)],
                "usage": {"prompt_tokens": 0, "total_tokens": 0},
            }
        if isinstance(result, str):
            if endpoint_type == CHAT:
                choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": result}}
            else:
                choice = {"index": 0, "text": result, "logprobs": None}
            result = {"choices": [{**choice, "finish_reason": "stop"}], "usage": None}
        if not isinstance(result, dict) or not isinstance(result.get("choices"), list):
            raise TypeError(f"{METHODS[endpoint_type]}() must return a str or an OpenAI response dict")
        prefix, obj = ("chatcmpl-", "chat.completion") if endpoint_type == CHAT else ("cmpl-", "text_completion")
        return {"id": prefix + uuid.uuid4().hex, "object": obj, "created": now(), "model": self.model, **result}

    async def stream(self, endpoint_type: str, body: dict[str, Any], state: StreamState) -> AsyncIterator[StreamChunk]:
        method = METHODS.get(endpoint_type, "embeddings") + "_stream"
        fn = getattr(self.instance, method, None)
        if endpoint_type == EMBEDDINGS or fn is None:
            raise InvalidRequest(f"stream: {self.class_path} has no {method}() method", param="stream")
        await self._ready()
        state.id = ("chatcmpl-" if endpoint_type == CHAT else "cmpl-") + uuid.uuid4().hex
        state.model = self.model
        if endpoint_type == CHAT:
            yield StreamChunk(chunk(state, {"role": "assistant", "content": ""}))
        finished = False
        with self._errors(method):
            async for item in fn(body):
                if isinstance(item, dict):
                    for choice in item.get("choices") or ():
                        finished = finished or bool(choice.get("finish_reason"))
                    yield StreamChunk({"id": state.id, "created": state.created, "model": state.model, **item})
                elif endpoint_type == CHAT:
                    yield StreamChunk(chunk(state, {"content": str(item)}))
                else:
                    yield StreamChunk(self._text_chunk(state, str(item), None))
        if not finished:
            state.finish_reason = "stop"
            if endpoint_type == CHAT:
                yield StreamChunk(chunk(state, finish="stop"))
            else:
                yield StreamChunk(self._text_chunk(state, "", "stop"))

    @staticmethod
    def _text_chunk(state: StreamState, text: str, finish: str | None) -> dict[str, Any]:
        return {
            "id": state.id,
            "object": "text_completion",
            "created": state.created,
            "model": state.model,
            "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}],
        }

    async def aclose(self) -> None:
        close = getattr(self.instance, "aclose", None)
        if close is not None:
            try:
                await self._call(close)
            except Exception:
                logger.exception("%s.aclose() failed", self.class_path)


class _UserCode:
    """Gateway errors from the class pass through; anything else is a 502 naming the class, not its message."""

    def __init__(self, class_path: str, method: str) -> None:
        self.where = f"{class_path}.{method}()"

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or isinstance(exc, GatewayError) or not isinstance(exc, Exception):
            return False
        # The message may hold anything (paths, data): it goes to the log, not to the client.
        logger.error("%s failed", self.where, exc_info=exc)
        raise UpstreamUnavailable(
            f"python provider {self.where} failed ({type(exc).__name__})", code="provider_error"
        ) from exc
