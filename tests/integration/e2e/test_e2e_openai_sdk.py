"""The official OpenAI SDK against the real gateway process, with an OpenAI-speaking mock upstream."""

from __future__ import annotations

import openai

from tests.integration.e2e.e2e_upstream import OPENAI_KEY, MockUpstream


def test_chat(oai: openai.OpenAI, upstream: MockUpstream, token: str) -> None:
    reply = oai.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": f"hi {token}"}], temperature=0.3
    )

    assert reply.choices[0].message.content == f"Echo: hi {token}"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens == 14
    [sent] = upstream.received(token)
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "gpt-4o-mini"  # the endpoint name became the provider's model id
    assert sent.body["temperature"] == 0.3
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert "stream" not in sent.body or sent.body["stream"] is False


def test_chat_stream_reassembles_text_and_usage(oai: openai.OpenAI, upstream: MockUpstream, token: str) -> None:
    stream = oai.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": f"tell me a long story {token}"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"Echo: tell me a long story {token}"
    assert len([c for c in chunks if c.choices]) > 3  # really streamed, not one blob
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 14
    [sent] = upstream.received(token)
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}


def test_chat_stream_without_usage_asks_upstream_but_hides_the_usage_chunk(
    oai: openai.OpenAI, upstream: MockUpstream, token: str
) -> None:
    chunks = list(oai.chat.completions.create(model="chat", messages=[{"role": "user", "content": token}], stream=True))

    assert "".join(c.choices[0].delta.content or "" for c in chunks) == f"Echo: {token}"
    assert all(c.choices for c in chunks)  # no usage-only chunk the client did not ask for
    [sent] = upstream.received(token)
    # Forced, so token counts reach tracking even when the client did not ask.
    assert sent.body["stream_options"] == {"include_usage": True}


def test_completions(oai: openai.OpenAI, upstream: MockUpstream, token: str) -> None:
    reply = oai.completions.create(model="completions", prompt=f"once upon {token}", max_tokens=20)

    assert reply.choices[0].text == f"Echo: once upon {token}"
    assert reply.usage is not None and reply.usage.total_tokens == 10
    [sent] = upstream.received(token)
    assert sent.path == "/v1/completions"
    assert sent.body["model"] == "gpt-3.5-turbo-instruct"
    assert sent.body["max_tokens"] == 20


def test_completions_stream(oai: openai.OpenAI, upstream: MockUpstream, token: str) -> None:
    chunks = list(
        oai.completions.create(
            model="completions", prompt=f"a b c {token}", stream=True, stream_options={"include_usage": True}
        )
    )

    assert "".join(c.choices[0].text for c in chunks if c.choices) == f"Echo: a b c {token}"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 10
    [sent] = upstream.received(token)
    assert sent.body["stream_options"] == {"include_usage": True}


def test_embeddings_batch(oai: openai.OpenAI, upstream: MockUpstream, token: str) -> None:
    inputs = [f"one {token}", "three", "a fourth one"]
    reply = oai.embeddings.create(model="embeddings", input=inputs, encoding_format="float")

    assert [d.index for d in reply.data] == [0, 1, 2]
    assert [d.embedding for d in reply.data] == [[float(len(t)), float(i), 0.5] for i, t in enumerate(inputs)]
    [sent] = upstream.received(token)
    assert sent.body["input"] == inputs
    assert sent.body["model"] == "text-embedding-3-small"


def test_models_list(oai: openai.OpenAI) -> None:
    models = {m.id: m.owned_by for m in oai.models.list()}

    assert models["chat"] == "openai"
    assert models["claude"] == "anthropic"
    assert {"completions", "embeddings", "claude-completions", "nokey", "limited"} <= set(models)
    assert oai.models.retrieve("claude").owned_by == "anthropic"
