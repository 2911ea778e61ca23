"""Translation helpers several providers share: OpenAI chunks, completions through chat, tool calls.

Everything here is a pure function of data (or of a StreamState), so adapters stay short and
their tests need no HTTP.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson

from gateway.errors import InvalidRequest
from gateway.providers.base import StreamState, stream_event_json
from gateway.streaming import SSEEvent

CHUNK = "chat.completion.chunk"


def now() -> int:
    return int(time.time())


def text_of(content: Any) -> str:
    """The text of an OpenAI message content (a string or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")


def data_url(url: str, where: str, provider: str) -> tuple[str, str]:
    """(media type, base64 data) of a `data:` URL; other URLs are refused for providers that need bytes."""
    if not url.startswith("data:") or "," not in url:
        raise InvalidRequest(
            f"{where}: provider {provider!r} takes images as data: URLs (base64), not links", param=where
        )
    header, _, data = url.partition(",")
    return header[5:].split(";")[0] or "application/octet-stream", data


def parse_arguments(arguments: str | None, where: str) -> Any:
    """An assistant tool call's JSON arguments, parsed for providers that want an object."""
    try:
        return orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        raise InvalidRequest(f"{where}.function.arguments: not valid JSON", param=where) from None


def refuse_images(messages: list[dict[str, Any]], provider: str) -> None:
    """A 400 for image parts sent to a provider that reads text only."""
    for i, msg in enumerate(messages):
        content = msg.get("content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                if isinstance(part, dict) and part.get("type") == "image_url":
                    where = f"messages[{i}].content[{j}]"
                    raise InvalidRequest(f"{where}: images are not supported by provider {provider!r}", param=where)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def call_id(*parts: Any) -> str:
    """A stable tool-call id for providers that give none (same reply, same id: tests stay exact)."""
    return "call_" + hashlib.sha1(orjson.dumps(parts)).hexdigest()[:24]


def tool_names_by_id(messages: list[dict[str, Any]]) -> dict[str, str]:
    """tool_call_id -> function name, from the assistant turns (Gemini answers results by name)."""
    names = {}
    for msg in messages:
        for call in msg.get("tool_calls") or ():
            names[call.get("id")] = (call.get("function") or {}).get("name", "")
    return names


def prompt_messages(body: dict[str, Any], provider: str) -> list[dict[str, Any]]:
    """A completions `prompt` as one user message, for providers that only have chat."""
    prompt = body["prompt"]
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise InvalidRequest(f"prompt: provider {provider!r} takes one prompt per request", param="prompt")
        prompt = prompt[0]
    if body.get("suffix") is not None:
        raise InvalidRequest(f"suffix: not supported by provider {provider!r}", param="suffix")
    return [{"role": "user", "content": prompt}]


def completion_from_chat(chat: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion as a text_completion (completions served through a chat API)."""
    return {
        "id": chat.get("id"),
        "object": "text_completion",
        "created": chat.get("created") or now(),
        "model": chat.get("model"),
        "choices": [
            {
                "index": c.get("index", i),
                "text": (c.get("message") or {}).get("content") or "",
                "finish_reason": c.get("finish_reason"),
                "logprobs": None,
            }
            for i, c in enumerate(chat.get("choices") or ())
        ],
        "usage": chat.get("usage"),
    }


def completion_chunk_from_chat(chunk: dict[str, Any]) -> dict[str, Any] | None:
    """A chat chunk as a text_completion chunk; None when it carries nothing a completion has."""
    choices = []
    for c in chunk.get("choices") or ():
        delta = c.get("delta") or {}
        if delta.get("content") or c.get("finish_reason"):
            choices.append(
                {
                    "index": c.get("index", 0),
                    "text": delta.get("content") or "",
                    "finish_reason": c.get("finish_reason"),
                    "logprobs": None,
                }
            )
    if not choices and not chunk.get("usage"):
        return None
    out = {k: chunk[k] for k in ("id", "created", "model") if k in chunk}
    out |= {"object": "text_completion", "choices": choices}
    if chunk.get("usage"):
        out["usage"] = chunk["usage"]
    return out


def chunk(state: StreamState, delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    """One chat.completion.chunk with a single choice."""
    return {
        "id": state.id,
        "object": CHUNK,
        "created": state.created,
        "model": state.model,
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish, "logprobs": None}],
    }


def usage_chunk(state: StreamState, usage: dict[str, Any]) -> dict[str, Any]:
    """The usage-only chunk (empty choices) OpenAI sends last when include_usage is set."""
    return {
        "id": state.id,
        "object": CHUNK,
        "created": state.created,
        "model": state.model,
        "choices": [],
        "usage": usage,
    }


def openai_event(provider: Any, event: SSEEvent, state: StreamState) -> dict[str, Any] | None:
    """An OpenAI-format stream event as a dict (None for `[DONE]`), with its usage and finish reason
    noted in `state`; an in-stream error event raises the provider's error."""
    data = stream_event_json(event)
    if data is None:
        return None
    if "error" in data and "choices" not in data:
        raise provider.error(502, event.data.encode(), {})
    if data.get("usage"):
        state.usage = data["usage"]
    for choice in data.get("choices") or ():
        if choice.get("finish_reason"):
            state.finish_reason = choice["finish_reason"]
    return data


def usage(prompt: int | None, completion: int | None, cached: int | None = None) -> dict[str, Any]:
    prompt, completion = prompt or 0, completion or 0
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def tool_call_start(index: int, call_id_: str, name: str, arguments: str = "") -> dict[str, Any]:
    """The first delta of a tool call: the only one that carries `id`, `type` and `name`."""
    return {
        "tool_calls": [
            {"index": index, "id": call_id_, "type": "function", "function": {"name": name, "arguments": arguments}}
        ]
    }


def tool_call_args(index: int, arguments: str) -> dict[str, Any]:
    return {"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}


class ToolCallNormalizer:
    """Makes an OpenAI-shaped stream's tool-call deltas what the OpenAI SDK's accumulator expects.

    Peers ship streams where every delta repeats `id`, `type` and `name` (the SDK concatenates
    strings, so `id` becomes `call_1call_1`), omit `index`, or send empty `arguments` deltas.
    Here each call gets an `index`, `id`/`type`/`name` appear once, and empty deltas are dropped.
    """

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: dict[int, str | None] = {}  # index -> id

    def _index(self, call: dict[str, Any]) -> int:
        if isinstance(call.get("index"), int):
            return int(call["index"])
        cid = call.get("id")
        for index, seen_id in self.seen.items():
            if cid and seen_id == cid:
                return index
        if cid or not self.seen:
            return len(self.seen)
        return max(self.seen)  # a continuation without id: the call being streamed

    def delta(self, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for call in calls:
            index = self._index(call)
            fn = dict(call.get("function") or {})
            if index not in self.seen:
                self.seen[index] = call.get("id")
                out.append(
                    {
                        "index": index,
                        "id": call.get("id") or call_id(index, fn.get("name")),
                        "type": "function",
                        "function": {"name": fn.get("name") or "", "arguments": fn.get("arguments") or ""},
                    }
                )
                continue
            if fn.get("arguments"):
                out.append({"index": index, "function": {"arguments": fn["arguments"]}})
        return out
