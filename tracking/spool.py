"""A local, append-only spool for records that could not reach the sink yet.

Records land here when the sink is failing or the in-memory queue is full, and the writer
replays them when the sink works again. Replays are exactly-once because every sink writes
idempotently by record id (a file is deleted only after all of it was written; if the process
dies in between, the replay of the same ids is ignored by the sink).

Layout: `<dir>/spool-<pid>-<token>-<n>.jsonl.open` is being appended to by the Spool with that
token in process <pid>; sealed files
are renamed to `.jsonl` and are what replay reads. One JSON object per line, `TraceRecord.to_dict()`.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from tracking.records import TraceRecord

logger = logging.getLogger("tracking")

_OPEN = ".jsonl.open"
_SEALED = ".jsonl"
# Tokens of the Spool objects alive in this process: a file with our pid but an unknown token was
# left by an earlier process that had the same pid (pid 1 in a restarted container).
_LIVE_TOKENS: set[str] = set()


class SpoolFull(OSError):
    """The spool reached its size limit; the record cannot be kept."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    """Sync on purpose: appends are small local writes, cheap enough for the overflow path."""

    def __init__(self, directory: str | Path, *, max_bytes: int = 1024**3, max_file_bytes: int = 8 * 1024**2) -> None:
        self.directory = Path(directory).expanduser()
        self.max_bytes = max_bytes
        self.max_file_bytes = max_file_bytes
        self._counter = itertools.count()
        self._token = uuid.uuid4().hex[:12]
        _LIVE_TOKENS.add(self._token)
        self._file: Path | None = None
        self._fd: int | None = None
        self._file_bytes = 0
        self._sealed_bytes: int | None = None  # computed lazily: the directory may not exist yet

    # --- writing ---------------------------------------------------------------------------

    def append(self, records: Iterable[TraceRecord]) -> int:
        """Append records durably enough to survive a process crash; returns how many were written.

        Raises OSError (SpoolFull included) when they cannot be kept; nothing is half-counted then.
        """
        data = b"".join(orjson.dumps(r.to_dict(), option=orjson.OPT_NON_STR_KEYS) + b"\n" for r in records)
        if not data:
            return 0
        if self.pending_bytes() + len(data) > self.max_bytes:
            raise SpoolFull(f"tracking spool {self.directory} is full ({self.max_bytes} bytes)")
        if self._fd is None or self._file_bytes >= self.max_file_bytes:
            self.seal()
            self._open_new()
        assert self._fd is not None
        # One write() of whole lines in O_APPEND mode: a crash leaves at worst a torn last line,
        # which `read` skips.
        written = os.write(self._fd, data)
        if written != len(data):  # pragma: no cover - only on a full disk
            raise OSError(f"short write to {self._file}")
        self._file_bytes += written
        return data.count(b"\n")

    def _open_new(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._file = self.directory / f"spool-{os.getpid()}-{self._token}-{next(self._counter):06d}{_OPEN}"
        self._fd = os.open(self._file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file_bytes = 0

    def seal(self) -> None:
        """Close the file being appended to and make it visible to replay."""
        if self._fd is None or self._file is None:
            return
        os.close(self._fd)
        self._fd = None
        if self._file_bytes:
            sealed = self._file.with_name(self._file.name.removesuffix(_OPEN) + _SEALED)
            with contextlib.suppress(FileNotFoundError):  # adopted by another process meanwhile
                os.replace(self._file, sealed)
            if self._sealed_bytes is not None:
                self._sealed_bytes += self._file_bytes
        else:
            self._file.unlink(missing_ok=True)
        self._file = None
        self._file_bytes = 0

    def close(self) -> None:
        self.seal()
        _LIVE_TOKENS.discard(self._token)

    # --- reading back ----------------------------------------------------------------------

    def adopt_orphans(self) -> int:
        """Seal `.open` files left by processes that died (a hard kill), so they get replayed."""
        if not self.directory.is_dir():
            return 0
        adopted = 0
        for path in self.directory.glob(f"spool-*{_OPEN}"):
            if path == self._file:
                continue
            parts = path.name.split("-")
            try:
                pid, token = int(parts[1]), parts[2]
            except (IndexError, ValueError):
                continue
            ours = pid == os.getpid()
            if (ours and token not in _LIVE_TOKENS) or (not ours and not _pid_alive(pid)):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(path, path.with_name(path.name.removesuffix(_OPEN) + _SEALED))
                    adopted += 1
        self._sealed_bytes = None
        return adopted

    def sealed_files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(f"spool-*{_SEALED}"), key=lambda p: (p.stat().st_mtime, p.name))

    def rescan(self) -> None:
        """Forget the cached size of sealed files (another process may have changed them)."""
        self._sealed_bytes = None

    def has_pending(self) -> bool:
        return self.pending_bytes() > 0

    def pending_bytes(self) -> int:
        """Bytes waiting for replay: sealed files plus the one being appended to."""
        if self._sealed_bytes is None:
            self._sealed_bytes = sum(p.stat().st_size for p in self.sealed_files())
        return self._sealed_bytes + self._file_bytes

    @staticmethod
    def read(path: Path, chunk: int = 1000) -> Iterator[list[TraceRecord]]:
        """The records of one sealed file, `chunk` at a time; a torn or corrupt line is skipped."""
        batch: list[TraceRecord] = []
        with path.open("rb") as f:
            for lineno, line in enumerate(f, 1):
                try:
                    batch.append(TraceRecord.from_dict(orjson.loads(line)))
                except (orjson.JSONDecodeError, TypeError, ValueError):
                    logger.warning("tracking: skipping unreadable spool line %s:%d", path, lineno)
                    continue
                if len(batch) >= chunk:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def remove(self, path: Path) -> None:
        size = path.stat().st_size if path.exists() else 0
        path.unlink(missing_ok=True)
        if self._sealed_bytes is not None:
            self._sealed_bytes = max(0, self._sealed_bytes - size)
