"""JSON Lines files for log shippers: one record per line, rotated by size like logging's RotatingFileHandler."""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import orjson

from tracking.config import JsonlSinkSettings
from tracking.records import TraceRecord
from tracking.sink import register_sink

# Replays repeat ids that may have landed already; remembering the recent ones keeps a file free
# of duplicates within a process lifetime. Across restarts a shipper should dedupe on "id".
_RECENT_IDS = 200_000


@register_sink("jsonl")
class JsonlSink:
    """Appends `TraceRecord.to_dict()` lines to `path`; rotates to `path.1` ... `path.N` past max_bytes."""

    def __init__(self, path: str | Path, *, max_bytes: int = 100 * 1024 * 1024, backups: int = 5) -> None:
        self.path = Path(path).expanduser()
        self.max_bytes = max_bytes
        self.backups = backups
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracking-jsonl")
        self._file: IO[bytes] | None = None
        self._size = 0
        self._recent: deque[str] = deque()
        self._recent_set: set[str] = set()

    @classmethod
    def from_settings(cls, settings: JsonlSinkSettings) -> JsonlSink:
        return cls(settings.path, max_bytes=settings.max_bytes, backups=settings.backups)

    def _open(self) -> IO[bytes]:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
            self._size = self._file.tell()
        return self._file

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for n in range(self.backups - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{n}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.path.exists():
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def _remember(self, record_id: str) -> None:
        self._recent.append(record_id)
        self._recent_set.add(record_id)
        if len(self._recent) > _RECENT_IDS:
            self._recent_set.discard(self._recent.popleft())

    def _write_sync(self, records: Sequence[TraceRecord]) -> None:
        lines = []
        for r in records:
            if r.id in self._recent_set:
                continue
            lines.append(orjson.dumps(r.to_dict(), option=orjson.OPT_NON_STR_KEYS) + b"\n")
        if not lines:
            return
        f = self._open()
        for line in lines:
            # Rotate between lines so a file never ends in half a record.
            if self._size and self._size + len(line) > self.max_bytes:
                self._rotate()
                f = self._open()
            f.write(line)
            self._size += len(line)
        f.flush()
        for r in records:
            self._remember(r.id)

    async def write(self, records: Sequence[TraceRecord]) -> None:
        if records:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._write_sync, list(records))

    def _close_sync(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_sync)
        self._executor.shutdown(wait=True)
