"""Integration-suite fixtures: the run-wide secret-hygiene check (see tests/integration/hygiene.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest
from starlette.applications import Starlette

from gateway import metrics
from gateway.config import GatewayConfig
from tests.integration.hygiene import LeakHandler, Violations, scan_gateway_dirs, tap_asgi
from tracking.sink import MemorySink


@pytest.fixture(scope="session", autouse=True)
def secret_hygiene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Violations]:
    """No test key in any response, log line, tracking record, metric or gateway file, suite-wide."""
    violations = Violations()
    mp = pytest.MonkeyPatch()
    mp.setattr(
        Starlette,
        "__call__",
        tap_asgi(
            Starlette.__call__, lambda app: isinstance(getattr(app.state, "config", None), GatewayConfig), violations
        ),
    )
    original_write = MemorySink.write

    async def write(self: MemorySink, records: list) -> None:
        for record in records:
            violations.check(f"tracking record {record.endpoint}/{record.status}", repr(record))
        await original_write(self, records)

    mp.setattr(MemorySink, "write", write)
    handler = LeakHandler(violations)
    root = logging.getLogger()
    root.addHandler(handler)
    for name in ("gateway", "tracking"):  # their debug lines too
        mp.setattr(logging.getLogger(name), "level", logging.DEBUG)
    try:
        yield violations
    finally:
        root.removeHandler(handler)
        mp.undo()
    violations.check("/metrics (in-process registry)", generate_latest(metrics.REGISTRY))
    files = scan_gateway_dirs(tmp_path_factory.getbasetemp(), violations)
    assert violations.scanned > 0
    assert not violations.found, f"secrets leaked ({violations.scanned} texts, {files} files checked):\n" + "\n".join(
        violations.found[:20]
    )
