"""App factory for uvicorn (`--workers N` needs an import string, so the config path comes from env)."""

from __future__ import annotations

import gc
import logging
import os

from starlette.applications import Starlette

from gateway.app import build_app
from gateway.config import config_path_from_env, load_config

STRICT_ENV = "LLM_GATEWAY_STRICT"
ACCESS_LOG_ENV = "LLM_GATEWAY_ACCESS_LOG"


def configure_access_log(mode: str) -> None:
    """`json`: one line per call on stderr, on its own (not through the root logger's format)."""
    log = logging.getLogger("gateway.access")
    log.propagate = False
    log.handlers.clear()
    if mode == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    else:
        log.setLevel(logging.WARNING)


def tune_gc() -> None:
    """Fewer, cheaper collections for a server that allocates a lot of short-lived objects per call.

    Everything loaded at start-up (modules, config, providers) is moved out of the collector's
    reach with gc.freeze(), and the youngest generation is collected every 50,000 allocations
    instead of 700 (a call allocates hundreds of objects, so the default ran a collection every
    few calls). Set LLM_GATEWAY_GC=default to keep Python's settings.
    """
    if os.environ.get("LLM_GATEWAY_GC") == "default":
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def create_app() -> Starlette:
    configure_access_log(os.environ.get(ACCESS_LOG_ENV, "off"))
    tune_gc()
    path = config_path_from_env()
    if path is None:
        raise RuntimeError("set LLM_GATEWAY_CONFIG to the gateway's config file")
    return build_app(load_config(path, strict=os.environ.get(STRICT_ENV) == "1"))
