"""Cohere v2 (/v2/chat, /v2/embed) <-> OpenAI chat, completions and embeddings."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, SecretStr

from gateway.errors import InvalidRequest
from gateway.providers import register
from gateway.providers.base import CHAT, COMPLETIONS, EMBEDDINGS, HTTPProvider, StreamState, UpstreamRequest
from gateway.providers.common import (
    chunk,
    completion_chunk_from_chat,
    completion_from_chat,
    now,
    prompt_messages,
    text_of,
    tool_call_args,
    tool_call_start,
    usage,
    usage_chunk,
)
from gateway.streaming import SSEEvent


class CohereConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    cohere_api_key: SecretStr
    cohere_api_base: str = "https://api.cohere.com/v2"  # ours: for proxies and private deployments


FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR": "stop",
    "TIMEOUT": "stop",
}
# OpenAI name -> Cohere v2 name.
RENAMED = {
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "top_p": "p",
    "top_k": "k",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
UNSUPPORTED = ("logit_bias", "logprobs", "top_logprobs", "user", "service_tier", "prediction", "audio", "modalities")


def _content(content: Any, where: str) -> Any:
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            parts.append({"type": "image_url", "image_url": {"url": (part.get("image_url") or {}).get("url", "")}})
        else:
            raise InvalidRequest(f"{where}.content[{j}].type: {kind!r} is not supported by cohere", param=where)
    return parts


def translate_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, msg in enumerate(messages):
        role, where = msg["role"], f"messages[{i}]"
        if role in ("system", "developer"):
            out.append({"role": "system", "content": text_of(msg.get("content"))})
        elif role == "user":
            out.append({"role": "user", "content": _content(msg.get("content"), where)})
        elif role == "assistant":
            item: dict[str, Any] = {"role": "assistant"}
            text = text_of(msg.get("content"))
            if text:
                item["content"] = text
            if msg.get("tool_calls"):
                item["tool_calls"] = [
                    {
                        "id": c.get("id"),
                        "type": "function",
                        "function": {
                            "name": (c.get("function") or {}).get("name"),
                            "arguments": (c.get("function") or {}).get("arguments") or "{}",
                        },
                    }
                    for c in msg["tool_calls"]
                ]
            out.append(item)
        elif role == "tool":
            out.append(
                {"role": "tool", "tool_call_id": msg.get("tool_call_id"), "content": text_of(msg.get("content"))}
            )
        else:
            raise InvalidRequest(f"{where}.role: {role!r} messages are not supported by cohere; use tools", param=where)
    return out


def usage_from(u: dict[str, Any]) -> dict[str, Any]:
    # `tokens` counts what the model saw; `billed_units` what was charged (may be smaller).
    counts = u.get("tokens") or u.get("billed_units") or {}
    return usage(counts.get("input_tokens"), counts.get("output_tokens"), u.get("cached_tokens"))


@register("cohere")
class CohereProvider(HTTPProvider):
    name = "cohere"
    endpoint_types = frozenset({CHAT, COMPLETIONS, EMBEDDINGS})
    config_model = CohereConfig
    secret_fields = frozenset({"cohere_api_key"})
    config: CohereConfig

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.config.cohere_api_key.get_secret_value()}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    def _chat(self, body: dict[str, Any], messages: list[dict[str, Any]], stream: bool) -> UpstreamRequest:
        self.unsupported(body, UNSUPPORTED)
        if (body.get("n") or 1) > 1:
            raise InvalidRequest("n: cohere returns one choice per request; n must be 1", param="n")
        payload: dict[str, Any] = {"model": self.model, "messages": translate_messages(messages)}
        payload |= {RENAMED[k]: v for k, v in body.items() if k in RENAMED and v is not None}
        stop = body.get("stop")
        if stop:
            payload["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_object":
            payload["response_format"] = {"type": "json_object"}
        elif fmt.get("type") == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema", {})
            payload["response_format"] = {"type": "json_object", "json_schema": schema}
        self._tools(body, payload)
        if stream:
            payload["stream"] = True
        return UpstreamRequest(self.config.cohere_api_base.rstrip("/") + "/chat", payload, self._headers())

    @staticmethod
    def _tools(body: dict[str, Any], payload: dict[str, Any]) -> None:
        tools = body.get("tools")
        if tools:
            for i, tool in enumerate(tools):
                if tool.get("type") != "function":
                    raise InvalidRequest(f"tools[{i}].type: only function tools are supported by cohere", param="tools")
            payload["tools"] = [
                {
                    "type": "function",
                    "function": {k: v for k, v in t["function"].items() if k in ("name", "description", "parameters")},
                }
                for t in tools
            ]
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            raise InvalidRequest("tool_choice: cohere cannot force one named tool; use 'required'", param="tool_choice")
        if choice in ("required", "none"):
            payload["tool_choice"] = choice.upper()
        if body.get("parallel_tool_calls") is False:
            raise InvalidRequest(
                "parallel_tool_calls: cohere cannot turn parallel calls off", param="parallel_tool_calls"
            )

    def chat_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        return self._chat(body, body["messages"], stream)

    def completions_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        self.unsupported(body, ("echo", "best_of"))
        return self._chat(body, prompt_messages(body, self.name), stream)

    def embeddings_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if not all(isinstance(t, str) for t in texts):
            raise InvalidRequest("input: cohere embeds text, not token ids", param="input")
        self.unsupported(body, ("user",))
        if body.get("encoding_format") == "base64":
            raise InvalidRequest("encoding_format: cohere answers floats here; use 'float'", param="encoding_format")
        payload: dict[str, Any] = {
            "model": self.model,
            "texts": texts,
            # Required by v3+ embed models; `input_type` in the body (ours) picks another.
            "input_type": body.get("input_type") or "search_document",
            "embedding_types": ["float"],
        }
        if body.get("dimensions"):
            payload["output_dimension"] = body["dimensions"]
        return UpstreamRequest(self.config.cohere_api_base.rstrip("/") + "/embed", payload, self._headers())

    # ---- responses ----------------------------------------------------------------------------

    def chat_response(self, data: dict[str, Any]) -> dict[str, Any]:
        msg = data["message"]
        text = "".join(p.get("text", "") for p in msg.get("content") or () if p.get("type") == "text")
        calls = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["function"]["name"], "arguments": c["function"].get("arguments") or "{}"},
            }
            for c in msg.get("tool_calls") or ()
        ]
        message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
        if calls:
            message["tool_calls"] = calls
        return {
            "id": data["id"],
            "object": "chat.completion",
            "created": now(),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": FINISH_REASONS.get(data.get("finish_reason"), "stop"),
                    "logprobs": None,
                }
            ],
            "usage": usage_from(data.get("usage") or {}),
        }

    def completions_response(self, data: dict[str, Any]) -> dict[str, Any]:
        return completion_from_chat(self.chat_response(data))

    def embeddings_response(self, data: dict[str, Any]) -> dict[str, Any]:
        vectors = data["embeddings"]["float"]
        tokens = ((data.get("meta") or {}).get("billed_units") or {}).get("input_tokens") or 0
        return {
            "object": "list",
            "model": self.model,
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def chat_chunk(self, event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
        data = orjson.loads(event.data)
        kind = data.get("type")
        message = (data.get("delta") or {}).get("message") or {}
        if kind == "message-start":
            state.id, state.model = data.get("id") or "", self.model
            state.extra["tools"] = {}
            return [chunk(state, {"role": "assistant", "content": ""})]
        if kind == "content-delta":
            text = (message.get("content") or {}).get("text")
            return [chunk(state, {"content": text})] if text else []
        if kind == "tool-call-start":
            call = message["tool_calls"]
            index = state.extra["tools"].setdefault(data.get("index", 0), len(state.extra["tools"]))
            fn = call.get("function") or {}
            return [chunk(state, tool_call_start(index, call["id"], fn["name"], fn.get("arguments") or ""))]
        if kind == "tool-call-delta":
            arguments = ((message.get("tool_calls") or {}).get("function") or {}).get("arguments")
            index = state.extra["tools"][data.get("index", 0)]
            return [chunk(state, tool_call_args(index, arguments))] if arguments else []
        if kind == "message-end":
            delta = data.get("delta") or {}
            state.finish_reason = FINISH_REASONS.get(delta.get("finish_reason"), "stop")
            state.usage = usage_from(delta.get("usage") or {})
            return [chunk(state, finish=state.finish_reason), usage_chunk(state, state.usage)]
        if kind == "error" or "error" in data:
            raise self.error(502, event.data.encode(), {})
        return []  # content-start/end, tool-plan-delta, tool-call-end, citation-start/end, debug

    def completions_chunk(self, event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
        return [c for c in map(completion_chunk_from_chat, self.chat_chunk(event, state)) if c is not None]
