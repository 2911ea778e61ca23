"""The SQLite schema, as an append-only list of migrations (llm's pattern).

The trace sink and the run store share one database file, so both call `migrate()` on open.
Never edit or reorder a migration that has shipped: append a new `mNNN_...` function instead.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]


def m001_traces(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE traces (
            id TEXT PRIMARY KEY,
            timestamp REAL NOT NULL,
            endpoint TEXT NOT NULL,
            endpoint_type TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            route TEXT NOT NULL,
            stream INTEGER NOT NULL,
            status INTEGER NOT NULL,
            client_request_id TEXT,
            request TEXT,
            response TEXT,
            error TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            total_tokens INTEGER,
            latency_ms REAL NOT NULL,
            ttft_ms REAL,
            response_model TEXT,
            upstream_id TEXT,
            client TEXT,
            finish_reason TEXT,
            retries INTEGER NOT NULL DEFAULT 0,
            fallback TEXT
        )
        """
    )
    # The indexes serve `traces list`: newest first, optionally filtered by endpoint or status.
    conn.execute("CREATE INDEX traces_timestamp ON traces (timestamp)")
    conn.execute("CREATE INDEX traces_endpoint_timestamp ON traces (endpoint, timestamp)")
    conn.execute("CREATE INDEX traces_status_timestamp ON traces (status, timestamp)")


def m002_runs(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            name TEXT,
            status TEXT NOT NULL,
            start_time REAL NOT NULL,
            end_time REAL
        )
        """
    )
    conn.execute("CREATE INDEX runs_start_time ON runs (start_time)")
    conn.execute(
        "CREATE TABLE run_params (run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (run_id, key))"
    )
    conn.execute(
        """
        CREATE TABLE run_metrics (
            run_id TEXT NOT NULL, key TEXT NOT NULL, value REAL, timestamp REAL NOT NULL,
            PRIMARY KEY (run_id, key)
        )
        """
    )
    conn.execute(
        "CREATE TABLE run_tables (run_id TEXT NOT NULL, name TEXT NOT NULL, rows TEXT NOT NULL, "
        "PRIMARY KEY (run_id, name))"
    )
    conn.execute(
        "CREATE TABLE run_artifacts (run_id TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL, "
        "PRIMARY KEY (run_id, name))"
    )


def m003_trace_key_name(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE traces ADD COLUMN key_name TEXT")


MIGRATIONS: list[Migration] = [m001_traces, m002_runs, m003_trace_key_name]


def connect(path: str) -> sqlite3.Connection:
    """Open the tracking database in WAL mode and bring its schema up to date."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    # WAL lets the CLI and the run store read while the sink writes; NORMAL sync is durable
    # across process crashes (only a power loss can lose the last commits).
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations not yet recorded in `_migrations`; returns the names applied."""
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    applied = []
    for migration in MIGRATIONS:
        name = migration.__name__
        if name in done:
            continue
        # BEGIN IMMEDIATE takes the write lock first, so two processes opening a fresh file
        # cannot both run the same migration.
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                conn.execute("COMMIT")
                continue
            migration(conn)
            conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied
