"""A PostgreSQL sink over asyncpg: one connection, one pipelined executemany per batch.

Install with `pip install 'llm-gateway[postgresql]'`. The connection is opened lazily and reopened
after a failure, so a database restart costs a few spooled batches, not the gateway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from tracking.config import PostgresSinkSettings
from tracking.records import TraceRecord
from tracking.rows import TRACE_COLUMNS, to_row
from tracking.sink import register_sink

logger = logging.getLogger("tracking")

try:
    import asyncpg
except ImportError:  # pragma: no cover - exercised only without the extra installed
    asyncpg = None


def m001_traces(table: str) -> list[str]:
    return [
        f"""
        CREATE TABLE IF NOT EXISTS {table} (
            id TEXT PRIMARY KEY,
            timestamp DOUBLE PRECISION NOT NULL,
            endpoint TEXT NOT NULL,
            endpoint_type TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            route TEXT NOT NULL,
            stream BOOLEAN NOT NULL,
            status INTEGER NOT NULL,
            client_request_id TEXT,
            request JSONB,
            response JSONB,
            error JSONB,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            total_tokens INTEGER,
            latency_ms DOUBLE PRECISION NOT NULL,
            ttft_ms DOUBLE PRECISION,
            response_model TEXT,
            upstream_id TEXT,
            client TEXT,
            finish_reason TEXT,
            retries INTEGER NOT NULL DEFAULT 0,
            fallback TEXT
        )
        """,
        f"CREATE INDEX IF NOT EXISTS {table}_timestamp ON {table} (timestamp)",
        f"CREATE INDEX IF NOT EXISTS {table}_endpoint_timestamp ON {table} (endpoint, timestamp)",
        f"CREATE INDEX IF NOT EXISTS {table}_status_timestamp ON {table} (status, timestamp)",
    ]


def m002_trace_key_name(table: str) -> list[str]:
    return [f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS key_name TEXT"]


# Append-only, like the SQLite schema; each entry maps the table name to its statements.
MIGRATIONS: list[Callable[[str], list[str]]] = [m001_traces, m002_trace_key_name]

_JSON = {"request", "response", "error"}
_STREAM = TRACE_COLUMNS.index("stream")


def _insert_sql(table: str) -> str:
    values = ", ".join(f"${i}::jsonb" if c in _JSON else f"${i}" for i, c in enumerate(TRACE_COLUMNS, 1))
    # DO NOTHING makes the write idempotent by id: spool replays never duplicate a row.
    return f"INSERT INTO {table} ({', '.join(TRACE_COLUMNS)}) VALUES ({values}) ON CONFLICT (id) DO NOTHING"


def _pg_row(record: TraceRecord) -> tuple[Any, ...]:
    row = list(to_row(record))
    row[_STREAM] = record.stream
    return tuple(row)


@register_sink("postgresql")
class PostgresSink:
    """Writes traces into `table` (created and migrated on first connect)."""

    def __init__(self, dsn: str, *, table: str = "traces") -> None:
        if asyncpg is None:
            raise RuntimeError("the postgresql sink needs asyncpg: pip install 'llm-gateway[postgresql]'")
        if not table.replace("_", "").isalnum() or table[0].isdigit():
            raise ValueError(f"invalid table name {table!r}")
        self._dsn = dsn
        self.table = table
        self._insert = _insert_sql(table)
        self._conn: Any = None

    @classmethod
    def from_settings(cls, settings: PostgresSinkSettings) -> PostgresSink:
        return cls(settings.dsn.get_secret_value(), table=settings.table)

    def __repr__(self) -> str:  # never show the DSN: it may hold a password
        return f"PostgresSink(table={self.table!r})"

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            # The application name lets operators find (and tests cut) the sink's connection.
            conn = await asyncpg.connect(
                self._dsn, timeout=10, server_settings={"application_name": "llm-gateway-tracking"}
            )
            try:
                await self._migrate(conn)
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn

    async def _migrate(self, conn: Any) -> None:
        ledger = f"{self.table}_migrations"
        await conn.execute(f"CREATE TABLE IF NOT EXISTS {ledger} (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ)")
        # An advisory lock serialises gateways starting together against a fresh database.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", ledger)
            done = {r["name"] for r in await conn.fetch(f"SELECT name FROM {ledger}")}
            for migration in MIGRATIONS:
                if migration.__name__ in done:
                    continue
                for statement in migration(self.table):
                    await conn.execute(statement)
                await conn.execute(f"INSERT INTO {ledger} (name, applied_at) VALUES ($1, now())", migration.__name__)

    async def open(self) -> None:
        """Connect and migrate at start-up; a database that is down now is retried on the first write."""
        try:
            await self._connection()
        except (OSError, asyncpg.PostgresError) as exc:
            logger.warning("tracking: postgresql is not reachable yet (%s); records will spool", type(exc).__name__)

    async def write(self, records: Sequence[TraceRecord]) -> None:
        if not records:
            return
        conn = await self._connection()
        try:
            async with conn.transaction():
                await conn.executemany(self._insert, [_pg_row(r) for r in records])
        except BaseException:
            # A dropped connection (server restart, admin shutdown) is reopened on the next write;
            # any other error leaves it usable.
            if conn.is_closed():
                self._conn = None
            raise

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            await conn.close()
