"""Runs last (file order): the secrets used by every e2e test reached no client, log line, metric or record.

The module also makes its own calls that tempt a leak (an upstream echoing the key back), so it
means something when run alone.
"""

from __future__ import annotations

import time

import httpx
import openai

from tests.integration.e2e.conftest import SECRETS, Gateway, Transcript
from tests.integration.e2e.e2e_upstream import MockUpstream

# Every test secret contains this, so a truncated or partly masked key is caught too.
MARKER = "SECRET"


def _leaks(text: str) -> list[str]:
    return [s for s in (*SECRETS, MARKER) if s in text]


def test_calls_that_tempt_a_leak(http: httpx.Client, oai: openai.OpenAI, upstream: MockUpstream, token: str) -> None:
    for model in ("chat", "claude"):
        response = http.post(
            "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "MOCK:error401"}]}
        )
        assert response.status_code == 401
    stream = oai.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": f"leak? {token}"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == f"Echo: leak? {token}"
    for path in ("/health", "/v1/models", "/api/2.0/endpoints/", "/api/2.0/gateway/routes/", "/openapi.json"):
        assert http.get(path).status_code == 200
    # The secrets did reach the upstream: the checks below are not vacuous.
    assert any(r.headers.get("x-api-key") in SECRETS for r in upstream.received(token))


def test_no_secret_in_any_response(transcript: Transcript) -> None:
    text = transcript.text()

    assert len(transcript.parts) > 10  # the transcript really recorded responses
    assert "[REDACTED]" in text  # the upstream's echo of the key was cleaned, not dropped unseen
    assert _leaks(text) == []


def test_no_secret_in_metrics(http: httpx.Client) -> None:
    response = http.get("/metrics")

    assert response.status_code == 200
    assert 'gateway_requests_total{endpoint="chat"' in response.text
    assert _leaks(response.text) == []


def test_no_secret_in_the_server_log(gateway: Gateway) -> None:
    log = gateway.log()

    assert "POST /v1/chat/completions" in log  # the access log was on: the log is as chatty as it gets
    assert _leaks(log) == []


def test_no_secret_in_tracking_records(gateway: Gateway) -> None:
    traces = gateway.workdir / "traces.jsonl"
    deadline = time.monotonic() + 3
    while not (traces.exists() and traces.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.05)

    text = traces.read_text()
    assert '"endpoint"' in text  # records were written
    assert _leaks(text) == []


def test_metric_labels_hold_only_configured_endpoint_names(http: httpx.Client) -> None:
    name = "client-chosen-name-4242"
    assert http.post("/v1/chat/completions", json={"model": name, "messages": []}).status_code in (400, 404)
    assert http.post(f"/endpoints/{name}/invocations", json={}).status_code == 404

    assert name not in http.get("/metrics").text  # clients cannot grow the label set
