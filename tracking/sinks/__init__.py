"""Built-in sinks, one module each; importing a module registers its sink (see `tracking.sink.register_sink`)."""

from __future__ import annotations

import importlib
from typing import Final

# Modules imported lazily by `load_sinks()`: postgresql, otlp and mlflow import their
# dependencies only when configured.
BUILTIN_SINKS: Final[dict[str, str]] = {
    "sqlite": "tracking.sinks.sqlite",
    "jsonl": "tracking.sinks.jsonl",
    "postgresql": "tracking.sinks.postgres",
    "otlp": "tracking.sinks.otlp",
    "mlflow": "tracking.sinks.mlflow",
}


def load_sink_module(name: str) -> None:
    """Import the built-in module that registers sink `name`, if there is one."""
    module = BUILTIN_SINKS.get(name)
    if module is not None:
        importlib.import_module(module)
