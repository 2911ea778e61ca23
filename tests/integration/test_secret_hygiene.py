"""The hygiene taps themselves: they are installed for the suite, and they do catch a leak."""

from __future__ import annotations

import logging

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.helpers import OPENAI_KEY
from tests.integration.hygiene import LeakHandler, Violations, tap_asgi

pytestmark = pytest.mark.anyio


async def test_the_session_taps_see_gateway_responses_and_logs(app_client, secret_hygiene):
    before = secret_hygiene.scanned
    await app_client.get("/health")
    logging.getLogger("gateway.test").debug("a debug line")
    assert secret_hygiene.scanned >= before + 3  # headers, body, log line


async def test_a_leak_is_caught_in_a_response_and_a_log_line():
    violations = Violations()

    async def leaky(request):
        return PlainTextResponse(f"oops {OPENAI_KEY}")

    app = Starlette(routes=[Route("/", leaky)])
    tapped = tap_asgi(Starlette.__call__, lambda a: True, violations)
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b"", "app": app}
    await tapped(app, scope, receive, send)
    handler = LeakHandler(violations)
    handler.emit(logging.LogRecord("x", logging.INFO, __file__, 1, "key=%s", (OPENAI_KEY,), None))
    assert [v.split(":")[0] for v in violations.found] == ["response to GET /", "log x"]
