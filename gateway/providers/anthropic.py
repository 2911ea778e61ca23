"""Anthropic Messages API <-> OpenAI chat and completions."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from gateway.errors import InvalidRequest
from gateway.providers import register
from gateway.providers.base import CHAT, COMPLETIONS, HTTPProvider, StreamState, UpstreamRequest
from gateway.providers.common import now, text_of, usage
from gateway.streaming import SSEEvent


class AnthropicConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    anthropic_api_key: SecretStr
    anthropic_api_base: str = "https://api.anthropic.com/v1"
    anthropic_version: str = "2023-06-01"
    # Anthropic requires max_tokens; MLflow's default, used when the client sends none.
    default_max_tokens: int = Field(8192, ge=1)


FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}
# OpenAI parameters the Messages API has no equivalent for: refused rather than silently dropped.
UNSUPPORTED = ("presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "logit_bias", "seed", "suffix")


def _image(part: dict[str, Any]) -> dict[str, Any]:
    url = (part.get("image_url") or {}).get("url", "")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";")[0]
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _content_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            blocks.append(_image(part))
        else:
            raise InvalidRequest(f"{where}.content[{j}].type: {kind!r} is not supported by anthropic", param=where)
    return blocks


def _tool_use(call: dict[str, Any]) -> dict[str, Any]:
    fn = call.get("function") or {}
    args = fn.get("arguments") or "{}"
    try:
        parsed = orjson.loads(args)
    except orjson.JSONDecodeError:
        raise InvalidRequest("tool_calls.function.arguments: not valid JSON", param="messages") from None
    return {"type": "tool_use", "id": call.get("id"), "name": fn.get("name"), "input": parsed}


def translate_messages(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """OpenAI messages -> (Anthropic top-level system, Anthropic messages with merged roles)."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        role = msg["role"]
        where = f"messages[{i}]"
        if role in ("system", "developer"):
            system.append(text_of(msg.get("content")))
            continue
        if role == "tool":
            blocks = [
                {"type": "tool_result", "tool_use_id": msg.get("tool_call_id"), "content": text_of(msg.get("content"))}
            ]
            role = "user"
        elif role == "function":
            raise InvalidRequest(
                f"{where}.role: 'function' messages are not supported by anthropic; use tools", param=where
            )
        else:
            blocks = _content_blocks(msg.get("content"), where)
            if role == "assistant":
                blocks += [_tool_use(c) for c in msg.get("tool_calls") or ()]
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)  # the Messages API wants alternating roles
        else:
            out.append({"role": role, "content": blocks})
    return ("\n".join(system) if system else None), out


def translate_tools(body: dict[str, Any], payload: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools:
        payload["tools"] = [
            {
                "name": t["function"]["name"],
                "description": t["function"].get("description", ""),
                "input_schema": t["function"].get("parameters") or {"type": "object", "properties": {}},
            }
            for t in tools
            if t.get("type") == "function"
        ]
    choice = body.get("tool_choice")
    if choice is not None:
        if isinstance(choice, dict):
            payload["tool_choice"] = {"type": "tool", "name": choice["function"]["name"]}
        else:
            payload["tool_choice"] = {"type": {"required": "any"}.get(choice, choice)}
        if body.get("parallel_tool_calls") is False and payload["tool_choice"]["type"] != "none":
            payload["tool_choice"]["disable_parallel_tool_use"] = True


def usage_from(u: dict[str, Any]) -> dict[str, Any]:
    """Cache reads and writes are prompt tokens too; reads are also OpenAI's `cached_tokens`."""
    cached = u.get("cache_read_input_tokens") or 0
    prompt = (u.get("input_tokens") or 0) + (u.get("cache_creation_input_tokens") or 0) + cached
    return usage(prompt, u.get("output_tokens"), cached)


@register("anthropic")
class AnthropicProvider(HTTPProvider):
    name = "anthropic"
    endpoint_types = frozenset({CHAT, COMPLETIONS})
    config_model = AnthropicConfig
    secret_fields = frozenset({"anthropic_api_key"})
    config: AnthropicConfig

    def _messages_request(self, body: dict[str, Any], messages: list[dict[str, Any]], stream: bool) -> UpstreamRequest:
        self.unsupported(body, UNSUPPORTED)
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
            # The Messages API has no JSON mode: refusing beats answering prose to a client expecting JSON.
            raise InvalidRequest(
                f"response_format: {fmt.get('type')!r} is not supported by provider 'anthropic'",
                param="response_format",
            )
        if (body.get("n") or 1) > 1:
            raise InvalidRequest("n: anthropic returns one choice per request; n must be 1", param="n")
        system, anthropic_messages = translate_messages(messages)
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": anthropic_messages,
            "max_tokens": body.get("max_tokens") or body.get("max_completion_tokens") or self.config.default_max_tokens,
        }
        if system:
            payload["system"] = system
        if body.get("temperature") is not None:
            # OpenAI's range is 0-2 and Anthropic's 0-1: halve it, as MLflow does.
            payload["temperature"] = body["temperature"] / 2
        if body.get("top_p") is not None:
            payload["top_p"] = body["top_p"]
        if body.get("top_k") is not None:
            payload["top_k"] = body["top_k"]
        stop = body.get("stop")
        if stop:
            payload["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        if body.get("user"):
            payload["metadata"] = {"user_id": body["user"]}
        translate_tools(body, payload)
        if stream:
            payload["stream"] = True
        headers = {
            "x-api-key": self.config.anthropic_api_key.get_secret_value(),
            "anthropic-version": self.config.anthropic_version,
            "content-type": "application/json",
        }
        return UpstreamRequest(self.config.anthropic_api_base.rstrip("/") + "/messages", payload, headers)

    def chat_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        return self._messages_request(body, body["messages"], stream)

    def completions_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        prompt = body["prompt"]
        if isinstance(prompt, list):
            if len(prompt) != 1:
                raise InvalidRequest("prompt: anthropic takes one prompt per request", param="prompt")
            prompt = prompt[0]
        return self._messages_request(body, [{"role": "user", "content": prompt}], stream)

    def chat_response(self, data: dict[str, Any]) -> dict[str, Any]:
        text, calls = [], []
        for block in data["content"]:
            if block["type"] == "text":
                text.append(block["text"])
            elif block["type"] == "tool_use":
                calls.append(
                    {
                        "id": block["id"],
                        "type": "function",
                        "function": {"name": block["name"], "arguments": orjson.dumps(block["input"]).decode()},
                    }
                )
        message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
        if calls:
            message["tool_calls"] = calls
        return {
            "id": data["id"],
            "object": "chat.completion",
            "created": now(),
            "model": data.get("model", self.model),
            "choices": [
                {"index": 0, "message": message, "finish_reason": FINISH_REASONS.get(data.get("stop_reason"), "stop")}
            ],
            "usage": usage_from(data.get("usage") or {}),
        }

    def completions_response(self, data: dict[str, Any]) -> dict[str, Any]:
        chat = self.chat_response(data)
        choice = chat["choices"][0]
        return {
            "id": chat["id"],
            "object": "text_completion",
            "created": chat["created"],
            "model": chat["model"],
            "choices": [
                {
                    "index": 0,
                    "text": choice["message"]["content"] or "",
                    "finish_reason": choice["finish_reason"],
                    "logprobs": None,
                }
            ],
            "usage": chat["usage"],
        }

    def _events(self, event: SSEEvent, state: StreamState) -> list[tuple[str, Any]]:
        """Anthropic stream event -> neutral deltas: ("role"|"text"|"tool"|"args"|"finish"|"usage", value)."""
        data = orjson.loads(event.data)
        kind = data.get("type")
        if kind == "message_start":
            msg = data["message"]
            state.id, state.model = msg["id"], msg.get("model", self.model)
            state.extra["usage"] = dict(msg.get("usage") or {})
            return [("role", None)]
        if kind == "content_block_start":
            block = data["content_block"]
            if block["type"] == "tool_use":
                index = state.extra.setdefault("tool_index", -1) + 1
                state.extra["tool_index"] = index
                return [("tool", (index, block["id"], block["name"]))]
            if block["type"] == "text" and block.get("text"):
                return [("text", block["text"])]
            return []
        if kind == "content_block_delta":
            delta = data["delta"]
            if delta["type"] == "text_delta":
                return [("text", delta["text"])]
            if delta["type"] == "input_json_delta" and delta.get("partial_json"):
                return [("args", (state.extra["tool_index"], delta["partial_json"]))]
            return []
        if kind == "message_delta":
            state.extra["usage"].update(data.get("usage") or {})
            state.usage = usage_from(state.extra["usage"])
            state.finish_reason = FINISH_REASONS.get(data["delta"].get("stop_reason"), "stop")
            return [("finish", state.finish_reason), ("usage", state.usage)]
        if kind == "error":
            err = data.get("error") or {}
            raise self.error(529 if err.get("type") == "overloaded_error" else 502, event.data.encode(), {})
        return []  # ping, content_block_stop, message_stop

    def chat_chunk(self, event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
        chunks = []
        for kind, value in self._events(event, state):
            if kind == "usage":
                chunks.append(self._chunk(state, [], usage=value))
                continue
            delta: dict[str, Any] = {}
            finish = None
            if kind == "role":
                delta = {"role": "assistant", "content": ""}
            elif kind == "text":
                delta = {"content": value}
            elif kind == "tool":
                index, call_id, name = value
                delta = {
                    "tool_calls": [
                        {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
                    ]
                }
            elif kind == "args":
                index, partial = value
                delta = {"tool_calls": [{"index": index, "function": {"arguments": partial}}]}
            elif kind == "finish":
                finish = value
            chunks.append(self._chunk(state, [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]))
        return chunks

    def completions_chunk(self, event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
        chunks = []
        for kind, value in self._events(event, state):
            if kind == "usage":
                chunks.append(self._chunk(state, [], usage=value, obj="text_completion"))
            elif kind in ("text", "finish"):
                text, finish = (value, None) if kind == "text" else ("", value)
                choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
                chunks.append(self._chunk(state, [choice], obj="text_completion"))
        return chunks

    @staticmethod
    def _chunk(
        state: StreamState, choices: list[dict[str, Any]], *, usage: Any = None, obj: str = "chat.completion.chunk"
    ) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": state.id,
            "object": obj,
            "created": state.created,
            "model": state.model,
            "choices": choices,
        }
        if usage is not None:
            chunk["usage"] = usage
        return chunk
