"""Provider registry: adding a provider is one module plus one line in BUILTIN_PROVIDERS."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Final, TypeVar

from gateway.errors import ConfigError

BUILTIN_PROVIDERS: Final = (
    "gateway.providers.openai",
    "gateway.providers.anthropic",
    "gateway.providers.openai_compatible",
    "gateway.providers.gemini",
    "gateway.providers.cohere",
    "gateway.providers.huggingface",
    "gateway.providers.mlflow_serving",
    "gateway.providers.python",
    "gateway.providers.bedrock",
)
ENTRY_POINT_GROUP: Final = "llm_gateway.providers"
# Providers MLflow dropped: a config naming one fails at load with the replacement, not at call time.
RETIRED: Final = {
    "palm": "gemini",
    "ai21labs": "openai-compatible",
    "mosaicml": "databricks or openai-compatible",
}

P = TypeVar("P")
_REGISTRY: dict[str, type[Any]] = {}
_loaded = False


def register(name: str, *aliases: str) -> Callable[[type[P]], type[P]]:
    def decorator(cls: type[P]) -> type[P]:
        for key in (name, *aliases):
            _REGISTRY[key] = cls
        return cls

    return decorator


def load_providers(*, plugins: bool = True) -> None:
    global _loaded
    if _loaded:
        return
    for module in BUILTIN_PROVIDERS:
        importlib.import_module(module)
    if plugins:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            ep.load()
    _loaded = True


def known_providers() -> list[str]:
    load_providers()
    return sorted(_REGISTRY)


def get_provider_class(name: str) -> type[Any]:
    load_providers()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in RETIRED:
        raise ConfigError(f"provider {name!r} was retired by its vendor; use {RETIRED[name]} instead")
    raise ConfigError(f"unknown provider {name!r} (known: {', '.join(known_providers())})")
