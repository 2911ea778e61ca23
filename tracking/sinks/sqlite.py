"""The default sink: an embedded SQLite file, written from one dedicated thread."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from tracking.config import SQLiteSinkSettings
from tracking.migrations import connect
from tracking.records import TraceRecord
from tracking.rows import TRACE_COLUMNS, to_row
from tracking.sink import register_sink
from tracking.store import DEFAULT_DB_PATH

T = TypeVar("T")

# OR IGNORE makes a write idempotent by record id, which is what lets the spool replay a batch
# that may already have landed (crash between the commit and deleting the spool file).
_INSERT = f"INSERT OR IGNORE INTO traces ({', '.join(TRACE_COLUMNS)}) VALUES ({', '.join('?' * len(TRACE_COLUMNS))})"


@register_sink("sqlite")
class SQLiteSink:
    """One connection, owned by one worker thread; one transaction and one executemany per batch."""

    def __init__(self, path: str | Path = DEFAULT_DB_PATH) -> None:
        self.path = str(path)
        # A single-worker pool keeps the connection on one thread and off the event loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracking-sqlite")
        self._conn: sqlite3.Connection | None = None

    @classmethod
    def from_settings(cls, settings: SQLiteSinkSettings) -> SQLiteSink:
        return cls(settings.path)

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            conn = connect(str(Path(self.path).expanduser()) if self.path != ":memory:" else self.path)
            # The gateway's record ids increase within a process, so inserts append to the primary-key
            # index and a 16 MB page cache is enough (random ids needed 64 MB, which every gateway
            # process then carried as RSS). Checkpointing every ~40 MB of WAL instead of 4 MB halves
            # the rewrite work (bench/tracking_sqlite.py).
            conn.execute("PRAGMA cache_size=-16384")
            conn.execute("PRAGMA wal_autocheckpoint=10000")
            self._conn = conn
        return self._conn

    def _write_sync(self, records: Sequence[TraceRecord]) -> None:
        rows = [to_row(r) for r in records]
        conn = self._connection()
        conn.execute("BEGIN")
        try:
            conn.executemany(_INSERT, rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    async def open(self) -> None:
        """Create the file and run migrations now, so a bad path fails at start-up, not on first write."""
        await self._call(self._connection)

    async def write(self, records: Sequence[TraceRecord]) -> None:
        if records:
            await self._call(self._write_sync, list(records))

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def aclose(self) -> None:
        await self._call(self._close_sync)
        self._executor.shutdown(wait=True)
