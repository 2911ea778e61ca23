"""`llm-gateway check-config` and `serve` as a user runs them: exit codes, messages, and MLflow's docs config."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import openai
import pytest
from mlflow.deployments import get_deploy_client

from tests.integration.e2e.conftest import (
    LLM_GATEWAY,
    UNSET_VAR,
    gateway_env,
    start_gateway,
    stop_gateway,
)

REPO = Path(__file__).resolve().parents[3]
MLFLOW_DOCS_CONFIG = """\
endpoints:
- name: completions
  endpoint_type: llm/v1/chat
  model:
    provider: openai
    name: gpt-3.5-turbo
    config:
      openai_api_key: $OPENAI_API_KEY
"""
DOCS_KEY = "sk-test-SECRET-docs-789"


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LLM_GATEWAY, *args], capture_output=True, text=True, timeout=30, env=env or gateway_env(), cwd=cwd
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_check_config_accepts_the_default_config_with_no_keys_set() -> None:
    result = run_cli("check-config", str(REPO / "config" / "gateway.yaml"))

    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert "chat" in result.stdout and "claude" in result.stdout
    assert "OPENAI_API_KEY is not set" in result.stdout  # reported, not fatal


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            """
endpoints:
  - name: chat
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: m, config: {openai_api_key: x}}
  - name: bad
    endpoint_type: llm/v1/chat
    model: {provider: opena1, name: m, config: {openai_api_key: x}}
""",
            ["endpoints[1].model.provider", "unknown provider 'opena1'", "openai", "anthropic"],
        ),
        (
            """
endpoints:
  - name: chat
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: m, config: {openai_api_key: x}}
  - name: chat
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: m, config: {openai_api_key: x}}
""",
            ["endpoints[1].name", "duplicate endpoint name 'chat'", "endpoints[0]"],
        ),
        (
            """
endpoints:
  - name: chat
    endpoint_type: llm/v1/chatty
    model: {provider: openai, name: m, config: {openai_api_key: x}}
""",
            ["endpoints[0].endpoint_type"],
        ),
        (
            """
endpoints:
  - name: chat
    endpoint_type: llm/v1/chat
    model: {provider: anthropic, name: m, config: {}}
""",
            ["endpoints[0].model.config.anthropic_api_key", "field required"],
        ),
        (
            """
endpoints:
  - name: e
    endpoint_type: llm/v1/embeddings
    model: {provider: anthropic, name: m, config: {anthropic_api_key: x}}
""",
            ["endpoints[0].endpoint_type", "does not serve llm/v1/embeddings"],
        ),
        (
            """
endpoints:
  - name: chat
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: m, config: {openai_api_key: x}}
    limit: {calls: 5, renewal_period: fortnight}
""",
            ["endpoints[0].limit.renewal_period"],
        ),
    ],
    ids=["unknown-provider", "duplicate-names", "bad-endpoint-type", "missing-key", "type-not-served", "bad-limit"],
)
def test_check_config_refuses_a_broken_config_naming_the_key_path(
    tmp_path: Path, config: str, expected: list[str]
) -> None:
    result = run_cli("check-config", str(write(tmp_path, config)))

    assert result.returncode == 1, result.stdout
    for fragment in expected:
        assert fragment in result.stderr


def test_check_config_reads_the_path_from_mlflows_variable(tmp_path: Path) -> None:
    path = write(tmp_path, MLFLOW_DOCS_CONFIG)
    result = run_cli("check-config", env=gateway_env(MLFLOW_DEPLOYMENTS_CONFIG=str(path), OPENAI_API_KEY=DOCS_KEY))

    assert result.returncode == 0, result.stderr
    assert "completions" in result.stdout and "available" in result.stdout
    assert DOCS_KEY not in result.stdout + result.stderr


def test_check_config_strict_fails_on_a_missing_variable(tmp_path: Path) -> None:
    result = run_cli("check-config", "--strict", str(write(tmp_path, MLFLOW_DOCS_CONFIG)))

    assert result.returncode == 1
    assert "endpoints[0].model.config.openai_api_key" in result.stderr
    assert "OPENAI_API_KEY is not set" in result.stderr


def test_serve_strict_refuses_to_start_when_a_variable_is_missing(tmp_path: Path) -> None:
    config = MLFLOW_DOCS_CONFIG.replace("$OPENAI_API_KEY", f"${UNSET_VAR}")
    result = run_cli("serve", "--strict", "--config", str(write(tmp_path, config)), "--port", "1", cwd=tmp_path)

    assert result.returncode == 1
    assert f"{UNSET_VAR} is not set" in result.stderr
    assert "endpoints[0].model.config.openai_api_key" in result.stderr


def test_serve_refuses_a_broken_config(tmp_path: Path) -> None:
    config = "endpoints:\n  - name: x\n    endpoint_type: llm/v1/chat\n    model: {provider: opena1, name: m}\n"
    result = run_cli("serve", "--config", str(write(tmp_path, config)), "--port", "1", cwd=tmp_path)

    assert result.returncode == 1
    assert "endpoints[0].model.provider" in result.stderr


def test_mlflow_docs_config_loads_and_serves(tmp_path: Path) -> None:
    path = write(tmp_path, MLFLOW_DOCS_CONFIG)
    gateway = start_gateway(path, tmp_path, env=gateway_env(OPENAI_API_KEY=DOCS_KEY))
    try:
        health = httpx.get(f"{gateway.url}/health", timeout=5).json()
        assert health["endpoints"] == {"completions": {"available": True}}

        client = get_deploy_client(gateway.url)
        [endpoint] = client.list_endpoints()
        assert (endpoint.name, endpoint.endpoint_type) == ("completions", "llm/v1/chat")
        assert (endpoint.model.name, endpoint.model.provider) == ("gpt-3.5-turbo", "openai")
        assert client.get_endpoint("completions").name == "completions"

        with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0) as oai:
            assert [m.id for m in oai.models.list()] == ["completions"]
            # A chat endpoint named "completions" is still a chat endpoint: the completions route refuses it.
            with pytest.raises(openai.NotFoundError, match="llm/v1/chat"):
                oai.completions.create(model="completions", prompt="hi")
    finally:
        stop_gateway(gateway)

    # uvicorn re-raises the SIGTERM it handled once shutdown is done, so -15 is a clean exit too.
    assert gateway.process.returncode in (0, -signal.SIGTERM), gateway.log()
    log = gateway.log()
    assert "Application shutdown complete" in log
    assert DOCS_KEY not in log
