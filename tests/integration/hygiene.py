"""Secret hygiene across the whole integration suite: where the test keys must never show up.

The session fixture in tests/integration/conftest.py installs these taps before the first
integration test and checks what they saw after the last one:

- every response an in-process gateway app sends (status line, headers, body bytes);
- every log record, from any logger, at any level;
- every tracking record written to a MemorySink;
- the Prometheus registry (all series the in-process gateways created);
- the logs, JSONL traces and SQLite databases of every gateway started as a process.

Each tap checks as it goes and keeps only violations, so memory stays flat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests.helpers import ANTHROPIC_KEY, OPENAI_KEY
from tests.integration.e2e.e2e_upstream import ANTHROPIC_KEY as E2E_ANTHROPIC_KEY, OPENAI_KEY as E2E_OPENAI_KEY

# Gateway keys used by the auth tests: clients send them, nothing may ever echo or keep them.
TEAM_KEY = "gw-test-team-KEY-0000000001"
LIMITED_KEY = "gw-test-limited-KEY-0000000002"
HASHED_KEY = "gw-test-hashed-KEY-0000000003"
ADMIN_KEY = "gw-test-admin-KEY-0000000004"
GATEWAY_KEYS = (TEAM_KEY, LIMITED_KEY, HASHED_KEY, ADMIN_KEY)
SECRETS = (OPENAI_KEY, ANTHROPIC_KEY, E2E_OPENAI_KEY, E2E_ANTHROPIC_KEY, *GATEWAY_KEYS)


class Violations:
    def __init__(self, secrets: Iterable[str] = SECRETS) -> None:
        self.secrets = tuple(secrets)
        self.found: list[str] = []
        self.scanned = 0

    def check(self, where: str, text: str | bytes) -> None:
        self.scanned += 1
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        for secret in self.secrets:
            if secret in text:
                at = text.index(secret)
                self.found.append(f"{where}: ...{text[max(0, at - 80) : at + len(secret) + 20]!r}...")


class LeakHandler(logging.Handler):
    def __init__(self, violations: Violations) -> None:
        super().__init__(logging.DEBUG)
        self.violations = violations

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a bad format string is the test's problem, not a leak
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + repr(record.exc_info[1])
        self.violations.check(f"log {record.name}", text)


def tap_asgi(original: Callable[..., Any], is_gateway: Callable[[Any], bool], violations: Violations) -> Any:
    """A Starlette.__call__ that copies what gateway apps send to the violation check."""

    async def tapped(app: Any, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or not is_gateway(app):
            await original(app, scope, receive, send)
            return
        where = f"response to {scope.get('method')} {scope.get('path', '')[:80]}"

        async def tee(message: dict) -> None:
            if message["type"] == "http.response.start":
                violations.check(where, repr(message.get("headers")))
            elif message["type"] == "http.response.body":
                violations.check(where, message.get("body", b""))
            await send(message)

        await original(app, scope, receive, tee)

    return tapped


def scan_gateway_dirs(root: Path, violations: Violations) -> int:
    """Logs, traces and databases of every `llm-gateway serve` a test started under `root`."""
    dirs = {log.parent for log in root.rglob("gateway-*.log")}
    files = 0
    for directory in dirs:
        for path in directory.rglob("*"):
            if path.is_file() and any(part in path.name for part in (".log", ".jsonl", ".db")):
                violations.check(f"file {path.relative_to(root)}", path.read_bytes())
                files += 1
    return files
