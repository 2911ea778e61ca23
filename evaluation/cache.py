"""The response cache: model and judge answers keyed by (endpoint, request), so a rerun resumes.

Only successful answers are stored. A run interrupted half-way re-sends only the rows it had not
finished; a rerun of a finished run calls nothing at all.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson


def request_key(endpoint: str, body: dict[str, Any]) -> str:
    """A stable digest of what was asked of whom (key order in the body does not matter)."""
    payload = orjson.dumps([endpoint, body], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()


class ResponseCache:
    """A SQLite key-value file; safe to share between threads, cheap to write per row."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        # WAL + NORMAL: a crash loses at most the last few answers, never the file.
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        value: dict[str, Any] = orjson.loads(row[0])
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)", (key, orjson.dumps(value))
            )

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
