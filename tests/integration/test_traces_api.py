"""GET /api/traces and /api/traces/{id} through the ASGI app, reading a SQLite sink in tmp_path."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import build_app
from tests.helpers import BASE_CONFIG, flushed, make_config
from tracking.records import TraceRecord, Usage
from tracking.sinks.sqlite import SQLiteSink

pytestmark = pytest.mark.anyio
OPENAI = "https://api.openai.com/v1"
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}
ADMIN_KEY = "admin-key-0123456789abcdef"
USER_KEY = "user-key-0123456789abcdef"


def tracking_yaml(db: Path, extra: str = "") -> str:
    return BASE_CONFIG + f'tracking:\n  sinks: [{{type: sqlite, path: "{db}"}}]\n  spool_dir: null\n' + extra


async def client_for(text: str) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(make_config(text), transport="httpx")
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "traces.db"


@pytest.fixture
async def client(db: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_for(tracking_yaml(db)):
        yield c


def record(i: int, *, endpoint: str = "chat", status: int = 200, age: float = 0.0) -> TraceRecord:
    return TraceRecord(
        id=f"rec-{i:04d}",
        timestamp=1_800_000_000.0 + i if not age else time.time() - age,
        endpoint=endpoint,
        endpoint_type="llm/v1/chat",
        provider="openai",
        model="gpt-4o-mini",
        route="/v1/chat/completions",
        stream=False,
        status=status,
        usage=Usage(i, 1, i + 1),
        latency_ms=5.0,
    )


async def seed(db: Path, records: list[TraceRecord]) -> None:
    sink = SQLiteSink(db)
    await sink.write(records)
    await sink.aclose()


async def test_a_proxied_call_is_listed_and_fetched_by_id(client, respx_mock):
    respx_mock.post(f"{OPENAI}/chat/completions").mock(return_value=httpx.Response(200, json=COMPLETION))
    r = await client.post(
        "/v1/chat/completions", json={"model": "chat", "messages": [{"role": "user", "content": "Hi"}]}
    )
    assert r.status_code == 200
    await flushed(client)

    page = (await client.get("/api/traces")).json()
    assert page["next_cursor"] is None
    [trace] = page["traces"]
    assert trace["endpoint"] == "chat"
    assert trace["status"] == 200
    assert trace["usage"] == {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    assert trace["request"]["messages"] == [{"role": "user", "content": "Hi"}]

    got = await client.get(f"/api/traces/{trace['id']}")
    assert got.status_code == 200
    assert got.json() == trace


async def test_filters_and_cursor_pagination(client, db):
    records = [record(i, endpoint="chat" if i % 2 else "claude", status=200 if i % 3 else 502) for i in range(30)]
    await seed(db, records)

    seen, cursor = [], None
    while True:
        params = {"endpoint": "chat", "limit": "4", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/traces", params=params)).json()
        assert len(page["traces"]) <= 4
        seen.extend(t["id"] for t in page["traces"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = [r.id for r in sorted(records, key=lambda r: -r.timestamp) if r.endpoint == "chat"]
    assert seen == expected

    errors = (await client.get("/api/traces", params={"status": "error"})).json()["traces"]
    assert {t["id"] for t in errors} == {r.id for r in records if r.status >= 400}
    exact = (await client.get("/api/traces", params={"status": "502", "endpoint": "claude"})).json()["traces"]
    assert {t["id"] for t in exact} == {r.id for r in records if r.status == 502 and r.endpoint == "claude"}
    klass = (await client.get("/api/traces", params={"status": "2xx", "limit": "1000"})).json()["traces"]
    assert len(klass) == len([r for r in records if r.status == 200])


async def test_since_filter(client, db):
    await seed(db, [record(1, age=7200), record(2, age=60), record(3, age=10)])
    recent = (await client.get("/api/traces", params={"since": "1h"})).json()["traces"]
    assert [t["id"] for t in recent] == ["rec-0003", "rec-0002"]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 30))
    assert [t["id"] for t in (await client.get("/api/traces", params={"since": iso})).json()["traces"]] == ["rec-0003"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"status": "teapot"}, "status"),
        ({"since": "yesterday-ish"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "5000"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"model": "gpt-4o"}, "model"),
    ],
)
async def test_a_bad_filter_is_a_400_naming_it(client, db, params, param):
    await seed(db, [record(1)])
    r = await client.get("/api/traces", params=params)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"].startswith(f"{param}:")


async def test_unknown_id_is_an_openai_shaped_404(client, db):
    await seed(db, [record(1)])
    r = await client.get("/api/traces/nope")
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "message": "trace 'nope' not found",
            "type": "not_found_error",
            "param": None,
            "code": "trace_not_found",
        }
    }


async def test_no_database_yet_lists_nothing_and_creates_no_file(tmp_path):
    db = tmp_path / "later" / "traces.db"
    text = BASE_CONFIG + f'tracking:\n  sinks: [{{type: sqlite, path: "{db}"}}]\n  spool_dir: null\n'
    app = build_app(make_config(text), transport="httpx")
    # No lifespan: the sink never opens, so the file is not there (a fresh install before any call).
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as c:
        assert (await c.get("/api/traces")).json() == {"traces": [], "next_cursor": None}
        assert (await c.get("/api/traces/x")).status_code == 404
    assert not db.exists()


async def test_without_a_sqlite_sink_the_routes_say_so(tmp_path):
    text = BASE_CONFIG + f'tracking:\n  sinks: [{{type: jsonl, path: "{tmp_path / "t.jsonl"}"}}]\n  spool_dir: null\n'
    async for c in client_for(text):
        r = await c.get("/api/traces")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "no_trace_store"


async def test_admin_key_required_when_auth_is_on(db, monkeypatch):
    monkeypatch.setenv("TRACES_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("TRACES_USER_KEY", USER_KEY)
    auth = "auth:\n  keys: [{name: app, key: $TRACES_USER_KEY}]\n  admin_keys: [{name: ops, key: $TRACES_ADMIN_KEY}]\n"
    await seed(db, [record(1)])
    async for c in client_for(tracking_yaml(db) + auth):
        assert (await c.get("/api/traces")).status_code == 401
        assert (await c.get("/api/traces/rec-0001", headers={"authorization": f"Bearer {USER_KEY}"})).status_code == 403
        ok = await c.get("/api/traces", headers={"authorization": f"Bearer {ADMIN_KEY}"})
        assert ok.status_code == 200
        assert [t["id"] for t in ok.json()["traces"]] == ["rec-0001"]
        one = await c.get("/api/traces/rec-0001", headers={"x-api-key": ADMIN_KEY})
        assert one.json()["id"] == "rec-0001"
