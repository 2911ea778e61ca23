"""Load evaluation data into rows: lists of dicts, CSV, JSONL/JSON, Parquet, pandas DataFrames.

Parquet needs pyarrow and DataFrames need pandas; both are optional and imported only when used.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson


@dataclass(frozen=True)
class Dataset:
    """Rows of column -> value, in order, with where they came from and a content digest."""

    rows: list[dict[str, Any]]
    source: str
    digest: str

    @property
    def columns(self) -> list[str]:
        seen: dict[str, None] = {}
        for row in self.rows:
            seen.update(dict.fromkeys(row))
        return list(seen)

    def column(self, name: str) -> list[Any]:
        return [row.get(name) for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)


def _digest(rows: list[dict[str, Any]]) -> str:
    # Same rows, same digest, whatever file format they came from.
    payload = orjson.dumps(rows, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY, default=str)
    return hashlib.sha256(payload).hexdigest()[:16]


def _clean(value: Any) -> Any:
    # pandas/pyarrow hand back NaN for missing cells and numpy scalars for numbers.
    if isinstance(value, float) and math.isnan(value):
        return None
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and type(value).__module__ == "numpy":
        return tolist()
    return value


def _from_records(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{str(k): _clean(v) for k, v in record.items()} for record in records]


def load_dataset(data: Any) -> Dataset:
    """Rows from a list of dicts, a path (.csv, .jsonl, .json, .parquet), or a pandas DataFrame."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, str | Path):
        rows = _load_path(Path(data))
        return Dataset(rows, str(data), _digest(rows))
    if _is_dataframe(data):
        rows = _from_records(data.to_dict(orient="records"))
        return Dataset(rows, "DataFrame", _digest(rows))
    if isinstance(data, list | tuple) and all(isinstance(r, Mapping) for r in data):
        rows = _from_records(data)
        return Dataset(rows, "list", _digest(rows))
    raise TypeError(
        f"unsupported data {type(data).__name__}: pass a list of dicts, a .csv/.jsonl/.json/.parquet path, "
        "or a pandas DataFrame"
    )


def _is_dataframe(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "to_dict")


def _load_path(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise FileNotFoundError(f"dataset {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return [dict(row) for row in csv.DictReader(fh)]
    if suffix in (".jsonl", ".ndjson"):
        return _load_jsonl(path)
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"{path}: a .json dataset must be a list of objects")
        return _from_records(data)
    if suffix in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise RuntimeError(f"reading {path} needs pyarrow: pip install pyarrow") from exc
        return _from_records(pq.read_table(path).to_pylist())
    raise ValueError(f"{path}: unknown dataset format {suffix!r} (use .csv, .jsonl, .json or .parquet)")


def _load_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: each line must be a JSON object")
            rows.append(row)
    return rows
