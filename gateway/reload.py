"""Config hot reload: validate -> build a new router -> swap one reference.

Triggers: the config file changes (watched, debounced), SIGHUP (single-process; with
`--workers N` uvicorn's supervisor answers SIGHUP with a rolling restart of its workers), and
`POST /admin/reload`. Calls already running keep the router they started with, streams included.
A config that fails validation is refused: the old one keeps serving, and the error is logged
with its key path, counted, and shown in /health.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from gateway import metrics
from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.router import EndpointRouter

logger = logging.getLogger("gateway.reload")


@dataclass(slots=True)
class ReloadResult:
    result: str  # "reloaded" | "unchanged" | "rejected"
    version: str  # the version serving after this attempt
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result, "version": self.version, "error": self.error}


class ConfigReloader:
    """One per app; owns the watcher task and the SIGHUP handler."""

    def __init__(self, app: Starlette, path: str, *, strict: bool = False) -> None:
        self.app = app
        self.path = Path(path).resolve()
        self.strict = strict
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.last: dict[str, Any] | None = None  # the last attempt, for /health

    async def reload(self, trigger: str) -> ReloadResult:
        async with self._lock:  # one reload at a time; a burst of triggers queues up here
            state = self.app.state
            try:
                config = await asyncio.to_thread(load_config, self.path, strict=self.strict)
            except ConfigError as exc:
                outcome = ReloadResult("rejected", state.router.version, str(exc))
                logger.error(
                    "config reload (%s) rejected; still serving version %s:\n%s", trigger, outcome.version, exc
                )
            else:
                if config.version == state.router.version:
                    outcome = ReloadResult("unchanged", config.version)
                else:
                    old = state.router
                    state.router = EndpointRouter(config, state.http_client, state.limit_store, previous=old)
                    state.config = config
                    state.max_body_bytes = config.gateway.max_body_bytes
                    # 0, not removed: in multiprocess mode a series can't be deleted from other workers' files.
                    metrics.CONFIG_INFO.labels(old.version).set(0)
                    metrics.CONFIG_INFO.labels(config.version).set(1)
                    for warning in config.warnings:
                        logger.warning("config: %s", warning)
                    for name, reason in config.unavailable.items():
                        logger.warning("endpoint %r is unavailable: %s", name, reason)
                    outcome = ReloadResult("reloaded", config.version)
                    logger.info("config reloaded (%s): version %s -> %s", trigger, old.version, config.version)
            metrics.CONFIG_RELOADS.labels(outcome.result).inc()
            self.last = {**outcome.to_dict(), "trigger": trigger, "at": time.time()}
            return outcome

    async def start(self, *, watch: bool, debounce_ms: int) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            # Only possible in the main thread (not when embedded in a test server thread).
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        if watch:
            self._tasks.append(asyncio.create_task(self._watch(debounce_ms), name="config-watch"))

    def _on_sighup(self) -> None:
        self._tasks.append(asyncio.create_task(self.reload("SIGHUP")))

    async def _watch(self, debounce_ms: int) -> None:
        from watchfiles import awatch

        # Watch the directory, not the file: editors and Kubernetes ConfigMaps replace the file
        # (rename or symlink swap), which a watch on the file itself would lose.
        directory = self.path.parent
        names = {self.path.name, "..data"}  # ..data: the ConfigMap symlink that flips on update
        try:
            async for changes in awatch(directory, debounce=debounce_ms, step=50, recursive=False):
                if any(Path(p).name in names for _, p in changes):
                    await self.reload("file change")
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("config watcher stopped; reload with SIGHUP or POST /admin/reload")

    async def aclose(self) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
