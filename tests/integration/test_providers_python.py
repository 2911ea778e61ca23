"""provider: python, through the app, with the worked example from docs/providers.md as the class."""

from __future__ import annotations

import asyncio
import sys
import textwrap

import orjson
import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError
from tests.helpers import flushed, make_config
from tests.unit.providers.matrix import DOC

pytestmark = pytest.mark.anyio
EXAMPLE = (
    DOC.read_text()
    .split("<!-- python-example:begin -->\n```python\n", 1)[1]
    .split("```\n<!-- python-example:end -->", 1)[0]
)
HELPERS = textwrap.dedent(
    """
    from gateway.errors import InvalidRequest

    class Broken:
        calls = 0

        async def load_context(self, config):
            type(self).calls += 1
            await __import__("asyncio").sleep(0.01)

        async def chat(self, body):
            if body.get("temperature") == 1.5:
                raise InvalidRequest("temperature: this model only samples below 1", param="temperature")
            raise RuntimeError("secret path /srv/weights leaked")

        def completions(self, body):
            return {"choices": [{"index": 0, "text": body["prompt"].upper(), "finish_reason": "length"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}

        async def completions_stream(self, body):
            yield "A"
            yield "B"
    """
)


@pytest.fixture
def modules(tmp_path, monkeypatch):
    (tmp_path / "faq_model.py").write_text(EXAMPLE)
    (tmp_path / "gateway_test_helpers.py").write_text(HELPERS)
    (tmp_path / "faq.yaml").write_text(
        "What are your opening hours?: We open at nine.\nWhere are you?: In Lyon, by the river.\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("faq_model", "gateway_test_helpers"):
        sys.modules.pop(name, None)


@pytest.fixture
def config(modules):
    faq = {"class": "faq_model:FaqModel", "answers_file": str(modules / "faq.yaml")}
    return parse_config(
        {
            "endpoints": [
                {
                    "name": "faq",
                    "endpoint_type": "llm/v1/chat",
                    "model": {"provider": "python", "name": "faq-bot", "config": faq},
                },
                {
                    "name": "faq-emb",
                    "endpoint_type": "llm/v1/embeddings",
                    "model": {"provider": "python", "config": {**faq, "dimensions": 8}},
                },
                {
                    "name": "broken",
                    "endpoint_type": "llm/v1/chat",
                    "model": {"provider": "python", "config": {"class": "gateway_test_helpers:Broken"}},
                },
                {
                    "name": "upper",
                    "endpoint_type": "llm/v1/completions",
                    "model": {"provider": "python", "config": {"class": "gateway_test_helpers:Broken"}},
                },
            ]
        }
    )


async def test_chat_answers_from_the_local_model(app_client, memory_sink):
    r = await app_client.post(
        "/v1/chat/completions", json={"model": "faq", "messages": [{"role": "user", "content": "where are you"}]}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "In Lyon, by the river."}
    assert body["model"] == "faq-bot" and body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    await flushed(app_client)
    assert memory_sink.records[0].provider == "python" and memory_sink.records[0].status == 200


async def test_chat_stream_wraps_strings_into_chunks(app_client):
    r = await app_client.post(
        "/v1/chat/completions",
        json={"model": "faq", "stream": True, "messages": [{"role": "user", "content": "opening hours?"}]},
    )
    events = [b[6:] for b in r.text.split("\n\n") if b.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "We open at nine."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert len({c["id"] for c in chunks}) == 1


async def test_embeddings_from_a_plain_def(app_client):
    r = await app_client.post("/v1/embeddings", json={"model": "faq-emb", "input": ["hello world", "hello"]})
    data = r.json()["data"]
    assert [d["index"] for d in data] == [0, 1] and all(len(d["embedding"]) == 8 for d in data)
    assert r.json()["model"] == "FaqModel"


async def test_errors_from_the_class(app_client):
    r = await app_client.post(
        "/v1/chat/completions", json={"model": "broken", "messages": [{"role": "user", "content": "x"}]}
    )
    assert r.status_code == 502
    message = r.json()["error"]["message"]
    assert "gateway_test_helpers:Broken.chat()" in message and "RuntimeError" in message and "/srv" not in message
    r = await app_client.post(
        "/v1/chat/completions",
        json={"model": "broken", "temperature": 1.5, "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "temperature"
    r = await app_client.post(
        "/v1/chat/completions", json={"model": "broken", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    )
    assert r.status_code == 400 and "chat_stream()" in r.json()["error"]["message"]


async def test_completions_dict_and_stream_and_load_context_once(app_client):
    import gateway_test_helpers

    replies = await asyncio.gather(
        *(app_client.post("/v1/completions", json={"model": "upper", "prompt": "abc"}) for _ in range(5))
    )
    assert all(r.json()["choices"][0]["text"] == "ABC" for r in replies)
    assert replies[0].json()["usage"]["total_tokens"] == 2 and replies[0].json()["object"] == "text_completion"
    assert gateway_test_helpers.Broken.calls <= 2  # once per endpoint built from the class (broken, upper)
    r = await app_client.post("/v1/completions", json={"model": "upper", "prompt": "abc", "stream": True})
    chunks = [orjson.loads(b[6:]) for b in r.text.split("\n\n") if b.startswith("data: {")]
    assert [c["choices"][0]["text"] for c in chunks] == ["A", "B", ""] and chunks[-1]["choices"][0][
        "finish_reason"
    ] == "stop"


def test_a_class_path_that_does_not_import_is_a_config_error(modules):
    with pytest.raises(ConfigError) as info:
        make_config(
            "endpoints: [{name: e, endpoint_type: llm/v1/chat, model: {provider: python, config: {class: 'faq_model:Nope'}}}]"
        )
    assert str(info.value).startswith("endpoints[0].model.config.class:") and "no attribute 'Nope'" in str(info.value)
    with pytest.raises(ConfigError, match="is not 'package.module:ClassName'"):
        make_config(
            "endpoints: [{name: e, endpoint_type: llm/v1/chat, model: {provider: python, config: {class: faq_model}}}]"
        )


def test_an_endpoint_type_the_class_cannot_serve_is_refused(modules):
    from gateway.providers.python import PythonProvider

    config = make_config(
        f"endpoints: [{{name: e, endpoint_type: llm/v1/completions, model: {{provider: python, config: {{class: 'faq_model:FaqModel', answers_file: {modules / 'faq.yaml'}}}}}}}]"
    )
    with pytest.raises(ConfigError, match="has no completions\\(\\) method"):
        PythonProvider(config.endpoints[0], config.provider_configs["e"])
