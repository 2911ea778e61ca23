"""App factory for uvicorn (`--workers N` needs an import string, so the config path comes from env)."""

from __future__ import annotations

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


def create_app() -> Starlette:
    configure_access_log(os.environ.get(ACCESS_LOG_ENV, "off"))
    path = config_path_from_env()
    if path is None:
        raise RuntimeError("set LLM_GATEWAY_CONFIG to the gateway's config file")
    return build_app(load_config(path, strict=os.environ.get(STRICT_ENV) == "1"))
