"""The OpenAI SDK against anthropic endpoints: OpenAI in, Messages API out, and back."""

from __future__ import annotations

import json

import openai

from tests.integration.e2e.e2e_upstream import ANTHROPIC_KEY, TOOL_INPUT, MockUpstream

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_chat_translates_both_ways(oai: openai.OpenAI, upstream: MockUpstream, token: str) -> None:
    reply = oai.chat.completions.create(
        model="claude",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": f"hello {token}"},
        ],
        temperature=1.0,
        stop=["END"],
    )

    assert reply.choices[0].message.content == f"Echo: hello {token}"
    assert reply.choices[0].finish_reason == "stop"  # end_turn
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (11, 7, 18)
    [sent] = upstream.received(token)
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == ANTHROPIC_KEY
    assert "authorization" not in sent.headers
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body["model"] == "claude-sonnet-4-5"
    assert sent.body["system"] == "You are terse."  # top level, not a message
    assert [m["role"] for m in sent.body["messages"]] == ["user"]
    assert sent.body["max_tokens"] == 8192  # Anthropic requires it; the default fills in
    assert sent.body["temperature"] == 0.5  # OpenAI's 0-2 halved onto Anthropic's 0-1
    assert sent.body["stop_sequences"] == ["END"]


def test_chat_keeps_the_clients_max_tokens(oai: openai.OpenAI, upstream: MockUpstream, token: str) -> None:
    oai.chat.completions.create(model="claude", messages=[{"role": "user", "content": token}], max_tokens=42)

    [sent] = upstream.received(token)
    assert sent.body["max_tokens"] == 42


def test_chat_stream(oai: openai.OpenAI, upstream: MockUpstream, token: str) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": f"stream this please {token}"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"Echo: stream this please {token}"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[0].choices[0].delta.role == "assistant"
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (11, 7)
    [sent] = upstream.received(token)
    assert sent.body["stream"] is True
    assert "stream_options" not in sent.body  # an OpenAI parameter the Messages API does not know


def test_tool_call_round_trip(oai: openai.OpenAI, upstream: MockUpstream, token: str) -> None:
    messages: list[dict] = [{"role": "user", "content": f"weather in Paris? MOCK:tool {token}"}]
    first = oai.chat.completions.create(model="claude", messages=messages, tools=[WEATHER_TOOL], tool_choice="auto")

    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    [call] = choice.message.tool_calls or []
    assert call.id == "toolu_mock_1"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == TOOL_INPUT

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"},
    ]
    second = oai.chat.completions.create(model="claude", messages=messages, tools=[WEATHER_TOOL])

    assert second.choices[0].message.content == "The tool said: 18 degrees and sunny"
    assert second.choices[0].finish_reason == "stop"
    first_sent, second_sent = upstream.received(token)
    assert first_sent.body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather in a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert first_sent.body["tool_choice"] == {"type": "auto"}
    # The assistant's tool call went back as a tool_use block, the tool's answer as a tool_result.
    user, assistant, tool_result = second_sent.body["messages"]
    assert user["role"] == "user"
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_mock_1", "name": "get_weather", "input": TOOL_INPUT},
        ],
    }
    assert tool_result == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_mock_1", "content": "18 degrees and sunny"}],
    }


def test_streamed_tool_call_arguments_reassemble(oai: openai.OpenAI, token: str) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": f"weather? MOCK:tool {token}"}],
            tools=[WEATHER_TOOL],
            stream=True,
        )
    )

    calls: dict[int, dict[str, str]] = {}
    arg_pieces = 0
    for chunk in chunks:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            if delta.function is not None:
                call["name"] += delta.function.name or ""
                call["arguments"] += delta.function.arguments or ""
                arg_pieces += bool(delta.function.arguments)
    assert list(calls) == [0]
    assert calls[0]["id"] == "toolu_mock_1"
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == TOOL_INPUT
    assert arg_pieces == 3  # the arguments really arrived in pieces
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Let me check."
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


def test_completions_through_messages_api(oai: openai.OpenAI, upstream: MockUpstream, token: str) -> None:
    reply = oai.completions.create(model="claude-completions", prompt=f"complete me {token}", max_tokens=30)

    assert reply.choices[0].text == f"Echo: complete me {token}"
    assert reply.usage is not None and reply.usage.total_tokens == 18
    [sent] = upstream.received(token)
    assert sent.path == "/v1/messages"
    assert sent.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": f"complete me {token}"}]}]
    assert sent.body["max_tokens"] == 30


def test_completions_stream_through_messages_api(oai: openai.OpenAI, token: str) -> None:
    chunks = list(
        oai.completions.create(
            model="claude-completions",
            prompt=f"stream me {token}",
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert "".join(c.choices[0].text for c in chunks if c.choices) == f"Echo: stream me {token}"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 18
