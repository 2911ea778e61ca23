"""Evaluation test fixtures: anyio on asyncio, an isolated cache and tracking store, a fake gateway."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.unit.evaluation.eval_fakes import FakeGateway


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def _eval_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # Session-wide: the CMU dictionary is written here once and NLTK keeps reading it.
    path = tmp_path_factory.mktemp("llm-gateway-cache")
    previous = os.environ.get("LLM_GATEWAY_CACHE_DIR")
    os.environ["LLM_GATEWAY_CACHE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("LLM_GATEWAY_CACHE_DIR", None)
    else:
        os.environ["LLM_GATEWAY_CACHE_DIR"] = previous


@pytest.fixture(autouse=True)
def _eval_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLM_GATEWAY_TRACKING_DB", str(tmp_path / "tracking.db"))
    for name in ("LLM_GATEWAY_URL", "MLFLOW_DEPLOYMENTS_TARGET", "LLM_GATEWAY_JUDGE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def transport(fake_gateway: FakeGateway) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=fake_gateway.app)
