"""Turn the user's `--since 2h` / `--older-than 30d` / ISO dates into unix timestamps."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str) -> float:
    """'90s', '15m', '2h', '30d', '1w' -> seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"invalid duration {text!r} (use a number and one of s, m, h, d, w: '30d')")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_since(value: float | int | str | datetime, *, now: float | None = None) -> float:
    """A point in time: unix seconds, a datetime, an ISO date, or a duration meaning 'that long ago'."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, int | float):
        return float(value)
    if _DURATION.match(value):
        return (time.time() if now is None else now) - parse_duration(value)
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parse_since(datetime.fromisoformat(value))
    except ValueError:
        raise ValueError(f"invalid time {value!r} (use a duration like '2h', unix seconds, or an ISO date)") from None
