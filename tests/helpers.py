"""Helpers the tests import: inline configs, the test secrets, fixture paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
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
