"""End-to-end fixtures: a mock upstream in a thread and the real `llm-gateway serve` in a subprocess.

Everything the tests receive from the gateway goes through `transcript`, so the last test can
check that no secret ever reached a client.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest

from tests.integration.e2e.e2e_upstream import ANTHROPIC_KEY, OPENAI_KEY, MockUpstream

LLM_GATEWAY = str(Path(sys.executable).parent / "llm-gateway")
SECRETS = (OPENAI_KEY, ANTHROPIC_KEY)
UNSET_VAR = "E2E_UNSET_KEY_7F3A"
START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gateway_env(**extra: str) -> dict[str, str]:
    """The environment for a gateway process: ours, minus anything a developer's shell may have set."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("LLM_GATEWAY")}
    env.pop(UNSET_VAR, None)
    env.update({"E2E_OPENAI_KEY": OPENAI_KEY, "E2E_ANTHROPIC_KEY": ANTHROPIC_KEY, "NO_PROXY": "*"}, **extra)
    return env


@dataclass
class Gateway:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    workdir: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_gateway(config_path: Path, workdir: Path, *, env: dict[str, str], args: tuple[str, ...] = ()) -> Gateway:
    """Run `llm-gateway serve` on a free port and wait until /health answers."""
    port = free_port()
    log_path = workdir / f"gateway-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [LLM_GATEWAY, "serve", "--config", str(config_path), "--host", "127.0.0.1", "--port", str(port), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=env,
        )
    gateway = Gateway(f"http://127.0.0.1:{port}", process, log_path, workdir)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode}:\n{gateway.log()}")
        try:
            if httpx.get(f"{gateway.url}/health", timeout=1).status_code == 200:
                return gateway
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop_gateway(gateway)
            raise RuntimeError(f"gateway did not answer /health within {START_TIMEOUT} s:\n{gateway.log()}")
        time.sleep(0.1)


def stop_gateway(gateway: Gateway) -> None:
    if gateway.process.poll() is None:
        gateway.process.send_signal(signal.SIGTERM)
        try:
            gateway.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            gateway.process.kill()
            gateway.process.wait(timeout=5)


CONFIG_TEMPLATE = """
endpoints:
  - name: chat
    endpoint_type: llm/v1/chat
    model:
      provider: openai
      name: gpt-4o-mini
      config: {{openai_api_key: $E2E_OPENAI_KEY, openai_api_base: "{openai_base}"}}
  - name: completions
    endpoint_type: llm/v1/completions
    model:
      provider: openai
      name: gpt-3.5-turbo-instruct
      config: {{openai_api_key: "${{E2E_OPENAI_KEY}}", openai_api_base: "{openai_base}"}}
  - name: embeddings
    endpoint_type: llm/v1/embeddings
    model:
      provider: openai
      name: text-embedding-3-small
      config: {{openai_api_key: $E2E_OPENAI_KEY, openai_api_base: "{openai_base}"}}
  - name: claude
    endpoint_type: llm/v1/chat
    model:
      provider: anthropic
      name: claude-sonnet-4-5
      config: {{anthropic_api_key: $E2E_ANTHROPIC_KEY, anthropic_api_base: "{anthropic_base}"}}
  - name: claude-completions
    endpoint_type: llm/v1/completions
    model:
      provider: anthropic
      name: claude-haiku-4-5
      config: {{anthropic_api_key: $E2E_ANTHROPIC_KEY, anthropic_api_base: "{anthropic_base}"}}
  - name: limited
    endpoint_type: llm/v1/chat
    model:
      provider: openai
      name: gpt-4o-mini
      config: {{openai_api_key: $E2E_OPENAI_KEY, openai_api_base: "{openai_base}"}}
    limit: {{calls: 2, renewal_period: minute}}
  - name: nokey
    endpoint_type: llm/v1/chat
    model:
      provider: openai
      name: gpt-4o-mini
      config: {{openai_api_key: ${unset_var}, openai_api_base: "{openai_base}"}}
  - name: impatient
    endpoint_type: llm/v1/chat
    model:
      provider: openai
      name: gpt-4o-mini
      config: {{openai_api_key: $E2E_OPENAI_KEY, openai_api_base: "{openai_base}"}}
    timeout: {{total: 1}}
  - name: refused
    endpoint_type: llm/v1/chat
    model:
      provider: openai
      name: gpt-4o-mini
      config: {{openai_api_key: $E2E_OPENAI_KEY, openai_api_base: "{closed_base}"}}
gateway:
  max_body_bytes: 65536
tracking:
  sinks: [{{type: jsonl, path: ./traces.jsonl}}]
  spool_dir: ./spool
  flush_interval: 0.05
"""


@dataclass
class Transcript:
    """Every status line, header and body byte the tests received from the gateway."""

    parts: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.parts.append(text)

    def text(self) -> str:
        return "\n".join(self.parts)


class _TeeStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, transcript: Transcript) -> None:
        self._inner = inner
        self._transcript = transcript

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._transcript.add(chunk.decode("utf-8", "replace"))
            yield chunk

    def close(self) -> None:
        self._inner.close()


class RecordingTransport(httpx.BaseTransport):
    """An ordinary HTTP transport that copies every response (headers and body bytes) to the transcript."""

    def __init__(self, transcript: Transcript) -> None:
        self._inner = httpx.HTTPTransport()
        self._transcript = transcript

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        self._transcript.add(f"{response.status_code} {list(response.headers.multi_items())}")
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_TeeStream(response.stream, self._transcript),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def transcript() -> Transcript:
    return Transcript()


@pytest.fixture(scope="session")
def upstream() -> Iterator[MockUpstream]:
    mock = MockUpstream()
    mock.start(free_port())
    yield mock
    mock.stop()


@pytest.fixture(scope="session")
def gateway(upstream: MockUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("gateway")
    config_path = workdir / "gateway.yaml"
    config_path.write_text(
        CONFIG_TEMPLATE.format(
            openai_base=upstream.base_url,
            anthropic_base=upstream.base_url,
            closed_base=f"http://127.0.0.1:{free_port()}/v1",  # nothing listens there: connection refused
            unset_var=UNSET_VAR,
        )
    )
    # debug logging and the access log: the secrets test wants the chattiest server there is.
    gw = start_gateway(config_path, workdir, env=gateway_env(), args=("--log-level", "debug", "--access-log"))
    yield gw
    stop_gateway(gw)


@pytest.fixture
def token() -> str:
    """A unique marker a test puts in its prompt to find its own requests at the mock."""
    return f"tok{uuid.uuid4().hex[:10]}"


@pytest.fixture
def http(gateway: Gateway, transcript: Transcript) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, transport=RecordingTransport(transcript), timeout=10) as client:
        yield client


@pytest.fixture
def oai(gateway: Gateway, transcript: Transcript) -> Iterator[openai.OpenAI]:
    http_client = httpx.Client(transport=RecordingTransport(transcript), timeout=10)
    client = openai.OpenAI(
        base_url=f"{gateway.url}/v1", api_key="gateway-client-key", http_client=http_client, max_retries=0
    )
    yield client
    client.close()
