"""Gateway keys: 401 without one, 403 off the allow-list or on admin routes, per-key limits, the name in tracking."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from gateway import auth
from gateway.auth import Authenticator, open_access_warning
from gateway.config import GatewayConfig
from gateway.errors import ConfigError
from tests.helpers import BASE_CONFIG, flushed, make_config
from tests.integration.hygiene import ADMIN_KEY, GATEWAY_KEYS, HASHED_KEY, LIMITED_KEY, TEAM_KEY

pytestmark = pytest.mark.anyio
OPENAI = "https://api.openai.com/v1"
ONE_ENDPOINT = """
endpoints:
  - name: chat
    endpoint_type: llm/v1/chat
    model: {provider: openai, name: gpt-4o-mini, config: {openai_api_key: $OPENAI_API_KEY}}
"""
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "Hi"}]}
OK = {
    "id": "x",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
AUTH = f"""
auth:
  keys:
    - {{name: team, key: $GW_TEAM_KEY}}
    - name: limited
      key: $GW_LIMITED_KEY
      endpoints: [chat]
      limit: {{renewal_period: minute, calls: 2}}
    - {{name: hashed, key: "sha256:{hashlib.sha256(HASHED_KEY.encode()).hexdigest()}", endpoints: "*"}}
  admin_keys:
    - {{name: ops, key: $GW_ADMIN_KEY}}
"""


@pytest.fixture
def config(monkeypatch: pytest.MonkeyPatch) -> GatewayConfig:
    monkeypatch.setenv("GW_TEAM_KEY", TEAM_KEY)
    monkeypatch.setenv("GW_LIMITED_KEY", LIMITED_KEY)
    monkeypatch.setenv("GW_ADMIN_KEY", ADMIN_KEY)
    return make_config(BASE_CONFIG + AUTH)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def upstream_ok(respx_mock):
    return respx_mock.post(f"{OPENAI}/chat/completions").mock(return_value=httpx.Response(200, json=OK))


async def test_no_key_is_401_in_openai_shape(app_client):
    r = await app_client.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    error = r.json()["error"]
    assert error["type"] == "authentication_error" and error["code"] == "missing_api_key"
    assert "Authorization: Bearer" in error["message"]
    assert (await app_client.get("/v1/models")).status_code == 401


async def test_wrong_key_is_401_and_never_echoed(app_client):
    for headers in (bearer("sk-wrong-but-long-enough-0000"), {"x-api-key": "nope"}, {"Authorization": "Basic abc"}):
        r = await app_client.post("/v1/chat/completions", json=CHAT, headers=headers)
        assert r.status_code == 401
        assert "sk-wrong" not in r.text and "nope" not in r.text


async def test_mlflow_routes_answer_401_and_403_in_their_own_shape(app_client):
    r = await app_client.post("/endpoints/chat/invocations", json={"messages": CHAT["messages"]})
    assert r.status_code == 401 and set(r.json()) == {"detail"}
    r = await app_client.get("/api/2.0/endpoints/")
    assert r.status_code == 401 and "missing gateway key" in r.json()["detail"]
    r = await app_client.post(
        "/endpoints/claude/invocations", json={"messages": CHAT["messages"]}, headers=bearer(LIMITED_KEY)
    )
    assert r.status_code == 403 and "may not call endpoint 'claude'" in r.json()["detail"]


@pytest.mark.parametrize(
    "headers",
    [bearer(TEAM_KEY), {"authorization": f"bearer  {TEAM_KEY} "}, {"x-api-key": TEAM_KEY}, bearer(HASHED_KEY)],
)
async def test_valid_keys_pass_as_bearer_or_x_api_key(app_client, upstream_ok, headers):
    r = await app_client.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "hello"


async def test_the_upstream_never_sees_the_gateway_key(app_client, upstream_ok):
    await app_client.post("/v1/chat/completions", json=CHAT, headers=bearer(TEAM_KEY))
    sent = upstream_ok.calls.last.request
    assert TEAM_KEY not in str(sent.headers) and TEAM_KEY.encode() not in sent.content


async def test_public_routes_stay_open(app_client):
    assert (await app_client.get("/health")).status_code == 200
    assert (await app_client.get("/openapi.json")).status_code == 200
    assert (await app_client.get("/metrics")).status_code == 200


async def test_allow_list_is_403_on_openai_routes(app_client, upstream_ok):
    r = await app_client.post("/v1/chat/completions", json={**CHAT, "model": "claude"}, headers=bearer(LIMITED_KEY))
    error = r.json()["error"]
    assert r.status_code == 403 and error["type"] == "permission_error" and error["code"] == "endpoint_not_allowed"


async def test_per_key_limit_is_429_and_other_keys_are_unaffected(app_client, upstream_ok):
    statuses = [
        (await app_client.post("/v1/chat/completions", json=CHAT, headers=bearer(LIMITED_KEY))).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    r = await app_client.post("/v1/chat/completions", json=CHAT, headers=bearer(LIMITED_KEY))
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
    assert "key 'limited' is rate limited" in r.json()["error"]["message"]
    r = await app_client.post("/v1/chat/completions", json=CHAT, headers=bearer(TEAM_KEY))
    assert r.status_code == 200


async def test_records_carry_the_key_name_never_the_key(app_client, upstream_ok, memory_sink):
    await app_client.post("/v1/chat/completions", json=CHAT, headers=bearer(TEAM_KEY))
    await app_client.post("/v1/chat/completions", json={**CHAT, "model": "claude"}, headers=bearer(LIMITED_KEY))
    await flushed(app_client)
    ok, forbidden = memory_sink.records
    assert (ok.key_name, ok.status) == ("team", 200)
    assert (forbidden.key_name, forbidden.status) == ("limited", 403)
    for record in memory_sink.records:
        assert not any(key in repr(record) for key in GATEWAY_KEYS)


async def test_admin_routes_need_an_admin_key(app_client):
    assert (await app_client.post("/admin/reload")).status_code == 401
    r = await app_client.post("/admin/reload", headers=bearer(TEAM_KEY))
    assert r.status_code == 403 and "not an admin key" in r.json()["error"]["message"]
    r = await app_client.post("/admin/reload", headers=bearer(ADMIN_KEY))
    assert r.status_code not in (401, 403)  # the route itself answers (no config file here: 409)


async def test_admin_keys_may_call_every_endpoint(app_client, upstream_ok):
    r = await app_client.post("/v1/chat/completions", json=CHAT, headers={"x-api-key": ADMIN_KEY})
    assert r.status_code == 200


async def test_metrics_can_require_a_key(monkeypatch, memory_sink):
    from asgi_lifespan import LifespanManager

    from gateway.app import build_app

    monkeypatch.setenv("GW_TEAM_KEY", TEAM_KEY)
    config = make_config(BASE_CONFIG + "auth: {keys: [{name: t, key: $GW_TEAM_KEY}], metrics_requires_key: true}")
    app = build_app(config, sink=memory_sink, transport="httpx")
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            assert (await client.get("/metrics")).status_code == 401
            r = await client.get("/metrics", headers=bearer(TEAM_KEY))
            assert r.status_code == 200 and 'gateway_auth_failures_total{reason="missing"}' in r.text
            assert TEAM_KEY not in r.text
            assert (await client.get("/health")).status_code == 200


async def test_without_an_auth_section_everything_is_open(monkeypatch):
    config = make_config(BASE_CONFIG)
    assert config.auth is None


def test_a_key_whose_variable_is_unset_fails_closed(monkeypatch):
    monkeypatch.delenv("GW_UNSET_KEY", raising=False)
    config = make_config(BASE_CONFIG + "auth: {keys: [{name: ghost, key: $GW_UNSET_KEY}]}")
    assert config.auth is not None and config.auth.enabled
    assert any("GW_UNSET_KEY is not set" in w for w in config.warnings)
    assert Authenticator(config.auth).identify("") is None
    assert Authenticator(config.auth).identify("$GW_UNSET_KEY") is None
    with pytest.raises(ConfigError, match=r"auth.keys\[0\].key: environment variable GW_UNSET_KEY is not set"):
        make_config(ONE_ENDPOINT + "auth: {keys: [{name: ghost, key: $GW_UNSET_KEY}]}", strict=True)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("{keys: [{name: a, key: short}]}", r"auth.keys\[0\].key: too short"),
        ("{keys: [{name: a, key: sha256:abc}]}", r"auth.keys\[0\].key: too short"),
        (
            "{keys: [{name: a, key: gw-literal-key-000000001}, {name: a, key: gw-literal-key-000000002}]}",
            r"auth.keys\[1\].name: duplicate key name 'a'",
        ),
        (
            "{keys: [{name: a, key: gw-literal-key-000000001, endpoint: [chat]}]}",
            r"auth.keys\[0\].endpoint: Extra inputs",
        ),
        ("{users: []}", r"auth.users"),
    ],
)
def test_bad_auth_sections_are_refused_naming_the_key(section, message):
    with pytest.raises(ConfigError, match=message):
        make_config(BASE_CONFIG + f"auth: {section}")


def test_config_keeps_only_digests_and_warns_about_literal_keys(monkeypatch):
    monkeypatch.setenv("GW_TEAM_KEY", TEAM_KEY)
    config = make_config(
        BASE_CONFIG + "auth: {keys: [{name: a, key: $GW_TEAM_KEY}, {name: b, key: gw-literal-key-000000001, "
        "endpoints: [chat, nope]}]}"
    )
    dumped = repr(config.auth.model_dump()) + repr(config.auth) + str(config.auth.keys[0].key.get_secret_value())
    assert TEAM_KEY not in dumped and "gw-literal-key-000000001" not in dumped
    assert any("auth.keys[1].key: a literal key" in w for w in config.warnings)
    assert any("auth.keys[1].endpoints: 'nope' is not a configured endpoint" in w for w in config.warnings)


def test_every_key_is_compared_whichever_matches(monkeypatch):
    monkeypatch.setenv("GW_TEAM_KEY", TEAM_KEY)
    monkeypatch.setenv("GW_LIMITED_KEY", LIMITED_KEY)
    monkeypatch.setenv("GW_ADMIN_KEY", ADMIN_KEY)
    authenticator = Authenticator(make_config(BASE_CONFIG + AUTH).auth)
    calls: list[int] = []
    real = auth.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    for presented in (TEAM_KEY, ADMIN_KEY, "no such key at all, not even close"):
        calls.clear()
        authenticator.identify(presented)
        assert len(calls) == 4, "no early exit: timing must not depend on which key matched"
    assert authenticator.identify(TEAM_KEY).name == "team"
    assert authenticator.identify(ADMIN_KEY).admin


@pytest.mark.parametrize(
    ("host", "has_keys", "warns"),
    [
        ("127.0.0.1", False, False),
        ("localhost", False, False),
        ("::1", False, False),
        ("0.0.0.0", False, True),
        ("::", False, True),
        ("10.1.2.3", False, True),
        ("0.0.0.0", True, False),
    ],
)
def test_start_up_warns_loudly_on_an_open_non_loopback_listener(monkeypatch, host, has_keys, warns):
    monkeypatch.setenv("GW_TEAM_KEY", TEAM_KEY)
    config = make_config(BASE_CONFIG + ("auth: {keys: [{name: t, key: $GW_TEAM_KEY}]}" if has_keys else ""))
    message = open_access_warning(host, config.auth)
    assert (message is not None) == warns
    if message:
        assert message.startswith("!!!") and "no gateway keys" in message and "docs/security.md" in message


async def test_listings_show_a_key_only_the_endpoints_it_may_call(app_client):
    limited = [m["id"] for m in (await app_client.get("/v1/models", headers=bearer(LIMITED_KEY))).json()["data"]]
    assert limited == ["chat"]
    everything = (await app_client.get("/v1/models", headers=bearer(TEAM_KEY))).json()["data"]
    assert len(everything) > 1
    r = await app_client.get("/v1/models/claude", headers=bearer(LIMITED_KEY))
    assert r.status_code == 404, "another key's endpoint looks like one that does not exist"
    mlflow = (await app_client.get("/api/2.0/endpoints/", headers=bearer(LIMITED_KEY))).json()["endpoints"]
    assert [e["name"] for e in mlflow] == ["chat"]
    assert (await app_client.get("/api/2.0/endpoints/claude", headers=bearer(LIMITED_KEY))).status_code == 404


async def test_key_limit_survives_a_router_swap(app_client, upstream_ok):
    # Counted in the app's limit store (shared through Redis when configured), not in the router.
    for _ in range(2):
        assert (
            await app_client.post("/v1/chat/completions", json=CHAT, headers=bearer(LIMITED_KEY))
        ).status_code == 200
    app = app_client.app
    from gateway.router import EndpointRouter

    app.state.router = EndpointRouter(
        app.state.config, app.state.http_client, app.state.limit_store, previous=app.state.router
    )
    r = await app_client.post("/v1/chat/completions", json=CHAT, headers=bearer(LIMITED_KEY))
    assert r.status_code == 429 and r.json()["error"]["code"] == "key_rate_limit_exceeded"
