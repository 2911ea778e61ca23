"""App factory for uvicorn (`--workers N` needs an import string, so the config path comes from env)."""

from __future__ import annotations

import os

from starlette.applications import Starlette

from gateway.app import build_app
from gateway.config import config_path_from_env, load_config

STRICT_ENV = "LLM_GATEWAY_STRICT"


def create_app() -> Starlette:
    path = config_path_from_env()
    if path is None:
        raise RuntimeError("set LLM_GATEWAY_CONFIG to the gateway's config file")
    return build_app(load_config(path, strict=os.environ.get(STRICT_ENV) == "1"))
