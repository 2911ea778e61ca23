"""Schemathesis over every route in /openapi.json, against the real server: no 5xx, every answer as documented.

Bounded: MAX_EXAMPLES per operation (13 operations), no example database, so the run takes seconds.
The upstream is tests/integration/fault_upstream.py (in a thread), so generated calls never leave the machine.
"""

from __future__ import annotations

import copy
import socket
import threading
import time
from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
import uvicorn
from schemathesis.checks import not_a_server_error

from gateway.app import build_app
from gateway.openapi import openapi_schema
from tests.helpers import OPENAI_KEY, make_config
from tests.integration.fault_upstream import FaultUpstream
from tracking.sink import MemorySink

MAX_EXAMPLES = 40
SEEN: list[tuple[str, int]] = []  # (operation, status) of every generated call, for the summary below
ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/completions": "completions", "/v1/embeddings": "embeddings"}


def _targeted() -> dict:
    """The served document with names narrowed to configured endpoints, so valid bodies reach the upstream."""
    doc = copy.deepcopy(openapi_schema())
    for path, name in ENDPOINTS.items():
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        body["properties"]["model"] = {"const": name}
        body["required"] = sorted({*body.get("required", []), "model"})
    for path, item in doc["paths"].items():
        for op in item.values():
            for param in op.get("parameters", []):
                if param["name"] == "name":
                    param["schema"] = (
                        {"enum": ["chat", "completions", "embeddings"]}
                        if "invocations" not in path
                        else {"const": "chat"}
                    )
    return doc


# Both modes: valid input (must be answered 2xx or a documented 4xx) and invalid input (4xx).
CONFIG = schemathesis.Config.from_dict({"generation": {"mode": "all"}})
served = schemathesis.openapi.from_dict(openapi_schema(), config=CONFIG)
targeted = schemathesis.openapi.from_dict(_targeted(), config=CONFIG)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(base: str) -> str:
    def ep(name: str, kind: str, model: str) -> str:
        return f"""
  - name: {name}
    endpoint_type: {kind}
    model: {{provider: openai, name: {model}, config: {{openai_api_key: $FUZZ_OPENAI_KEY, openai_api_base: "{base}"}}}}
    timeout: {{total: 5}}"""

    return (
        "endpoints:"
        + ep("chat", "llm/v1/chat", "gpt-4o-mini")
        + ep("completions", "llm/v1/completions", "gpt-3.5-turbo-instruct")
        + ep("embeddings", "llm/v1/embeddings", "text-embedding-3-small")
    )


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    upstream = FaultUpstream()  # its "ok" behaviour answers any valid body, streamed or not
    upstream.start()
    mp = pytest.MonkeyPatch()
    mp.setenv("FUZZ_OPENAI_KEY", OPENAI_KEY)
    app = build_app(make_config(_config(upstream.base("ok"))), sink=MemorySink())
    config = uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fuzz-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "gateway did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{config.port}"
    server.should_exit = True
    thread.join(timeout=10)
    upstream.stop()
    mp.undo()


SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)


def _check(case, base_url: str) -> None:
    response = case.call(base_url=base_url, timeout=10)
    SEEN.append((case.operation.label, response.status_code))
    case.validate_response(response, checks=[not_a_server_error, *_conformance()])


@served.parametrize()
@SETTINGS
def test_every_route_answers_as_documented(case, base_url: str) -> None:
    _check(case, base_url)


@targeted.parametrize()
@SETTINGS
def test_every_route_answers_as_documented_for_configured_names(case, base_url: str) -> None:
    _check(case, base_url)


def _conformance() -> list:
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [status_code_conformance, content_type_conformance, response_schema_conformance]


def test_fuzzing_covered_every_operation_in_both_directions() -> None:
    """Runs after the fuzz test (same module): every operation was called, with 2xx and 4xx answers."""
    operations = {label for label, _ in SEEN}
    documented = {f"{method.upper()} {path}" for path, ops in openapi_schema()["paths"].items() for method in ops}
    assert operations == documented
    assert {status // 100 for _, status in SEEN} == {2, 4}
    answered = {label for label, status in SEEN if status == 200}
    assert {"POST /v1/chat/completions", "POST /v1/completions", "POST /v1/embeddings"} <= answered
    print(f"schemathesis: {len(SEEN)} calls over {len(operations)} operations")
