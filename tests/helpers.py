"""Helpers the tests import: inline configs, the test secrets, fixture paths."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.config import GatewayConfig, parse_config

FIXTURES = Path(__file__).parent / "fixtures"
OPENAI_KEY = "sk-test-openai-SECRET-0001"
ANTHROPIC_KEY = "sk-ant-test-SECRET-0002"

BASE_CONFIG = """
endpoints:
  - name: chat
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: gpt-4o-mini, config: {openai_api_key: $OPENAI_API_KEY}}
  - name: completions
    endpoint_type: llm/v1/completions
    model: {provider: openai, name: gpt-3.5-turbo-instruct, config: {openai_api_key: $OPENAI_API_KEY}}
  - name: embeddings
    endpoint_type: llm/v1/embeddings
    model: {provider: openai, name: text-embedding-3-small, config: {openai_api_key: $OPENAI_API_KEY}}
  - name: claude
    endpoint_type: llm/v1/chat
    model: {provider: anthropic, name: claude-sonnet-4-5, config: {anthropic_api_key: $ANTHROPIC_API_KEY}}
  - name: claude-completions
    endpoint_type: llm/v1/completions
    model: {provider: anthropic, name: claude-sonnet-4-5, config: {anthropic_api_key: $ANTHROPIC_API_KEY}}
  - name: limited
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: gpt-4o-mini, config: {openai_api_key: $OPENAI_API_KEY}}
    limit: {renewal_period: minute, calls: 2}
  - name: fast-timeout
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: gpt-4o-mini, config: {openai_api_key: $OPENAI_API_KEY}}
    timeout: 0.5
  - name: keyless
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: gpt-4o-mini, config: {openai_api_key: $UNSET_TEST_KEY}}
"""


def make_config(text: str, **kwargs: Any) -> GatewayConfig:
    return parse_config(yaml.safe_load(text), text=text, **kwargs)


async def flushed(client: httpx.AsyncClient) -> None:
    """Let the tracking writer write what the requests so far submitted."""
    await client.app.state.writer.flush()  # type: ignore[attr-defined]


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throw-away redis-server on 127.0.0.1; yields its URL. Skips (fails in CI) without the binary."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing in CI: .ci/run installs Debian's redis-server")
        pytest.skip("redis-server is not installed (.ci/run installs Debian's redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(5)
