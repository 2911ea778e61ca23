from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from tracking.records import TraceRecord, Usage

_ids = itertools.count()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_record(**overrides: Any) -> TraceRecord:
    """A finished chat call with content, as the gateway's tap would hand it over."""
    n = next(_ids)
    fields: dict[str, Any] = {
        "id": f"trace-{n:08d}",
        "timestamp": time.time(),
        "endpoint": "chat",
        "endpoint_type": "llm/v1/chat",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "route": "/v1/chat/completions",
        "stream": False,
        "status": 200,
        "request": {"messages": [{"role": "user", "content": "hello"}], "temperature": 0.2},
        "response": {
            "id": "chatcmpl-1",
            "model": "gpt-4o-mini-2024",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        },
        "usage": Usage(3, 1, 4),
        "latency_ms": 12.5,
    }
    fields.update(overrides)
    return TraceRecord(**fields)


@pytest.fixture(name="make_record")
def make_record_fixture() -> Any:
    return make_record
