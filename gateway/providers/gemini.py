"""Google Gemini (AI Studio) generateContent / streamGenerateContent / batchEmbedContents <-> OpenAI."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, SecretStr

from gateway.errors import InvalidRequest
from gateway.providers import register
from gateway.providers.base import CHAT, COMPLETIONS, EMBEDDINGS, HTTPProvider, StreamState, UpstreamRequest
from gateway.providers.common import (
    call_id,
    chunk,
    completion_chunk_from_chat,
    completion_from_chat,
    data_url,
    dumps,
    now,
    parse_arguments,
    prompt_messages,
    text_of,
    tool_call_start,
    tool_names_by_id,
    usage_chunk,
)
from gateway.streaming import SSEEvent


class GeminiConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    gemini_api_key: SecretStr
    gemini_api_base: str = "https://generativelanguage.googleapis.com/v1beta"  # ours: for proxies


FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
# OpenAI name -> generationConfig name.
GENERATION_CONFIG = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "n": "candidateCount",
    "max_tokens": "maxOutputTokens",
    "max_completion_tokens": "maxOutputTokens",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "seed": "seed",
}
UNSUPPORTED = ("logit_bias", "logprobs", "top_logprobs", "user", "service_tier", "prediction", "audio", "modalities")
TOOL_CHOICE = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}]
    parts = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": part.get("text", "")})
        elif kind == "image_url":
            mime, data = data_url((part.get("image_url") or {}).get("url", ""), f"{where}.content[{j}]", "gemini")
            parts.append({"inlineData": {"mimeType": mime, "data": data}})
        else:
            raise InvalidRequest(f"{where}.content[{j}].type: {kind!r} is not supported by gemini", param=where)
    return parts


def _function_response(content: Any) -> dict[str, Any]:
    """Gemini wants an object: a JSON object passes as is, anything else is wrapped as {"result": ...}."""
    text = text_of(content)
    try:
        parsed = orjson.loads(text)
    except ValueError:
        return {"result": text}
    return parsed if isinstance(parsed, dict) else {"result": parsed}


def translate_messages(messages: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """OpenAI messages -> (system_instruction, contents)."""
    names = tool_names_by_id(messages)
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        role, where = msg["role"], f"messages[{i}]"
        if role in ("system", "developer"):
            system.append({"text": text_of(msg.get("content"))})
        elif role == "user":
            contents.append({"role": "user", "parts": _user_parts(msg.get("content"), where)})
        elif role == "assistant":
            parts = [{"text": t} for t in [text_of(msg.get("content"))] if t]
            for call in msg.get("tool_calls") or ():
                fn = call.get("function") or {}
                part: dict[str, Any] = {
                    "functionCall": {
                        "id": call.get("id"),
                        "name": fn.get("name"),
                        "args": parse_arguments(fn.get("arguments"), f"{where}.tool_calls"),
                    }
                }
                if call.get("thought_signature"):
                    part["thoughtSignature"] = call["thought_signature"]  # Gemini 3 wants it back
                parts.append(part)
            contents.append({"role": "model", "parts": parts})
        elif role == "tool":
            call = msg.get("tool_call_id")
            if call not in names:
                raise InvalidRequest(
                    f"{where}.tool_call_id: {call!r} answers no tool call of an earlier assistant message "
                    "(gemini needs the function's name)",
                    param=f"{where}.tool_call_id",
                )
            response = _function_response(msg.get("content"))
            part = {"functionResponse": {"id": call, "name": names[call], "response": response}}
            last = contents[-1] if contents else None
            # OpenAI sends one message per result; Gemini wants a turn's results in one user turn.
            if last and last["role"] == "user" and all("functionResponse" in p for p in last["parts"]):
                last["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
        else:
            raise InvalidRequest(f"{where}.role: {role!r} messages are not supported by gemini; use tools", param=where)
    return ({"parts": system} if system else None), contents


def _tools(body: dict[str, Any], payload: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools:
        declarations = []
        for i, tool in enumerate(tools):
            if tool.get("type") != "function":
                raise InvalidRequest(f"tools[{i}].type: only function tools are supported by gemini", param="tools")
            fn = tool["function"]
            decl = {"name": fn["name"]}
            if fn.get("description"):
                decl["description"] = fn["description"]
            if fn.get("parameters"):
                decl["parametersJsonSchema"] = fn["parameters"]
            declarations.append(decl)
        payload["tools"] = [{"functionDeclarations": declarations}]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        config = {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
        payload["toolConfig"] = {"functionCallingConfig": config}
    elif choice is not None:
        payload["toolConfig"] = {"functionCallingConfig": {"mode": TOOL_CHOICE.get(choice, "AUTO")}}
    if body.get("parallel_tool_calls") is False:
        raise InvalidRequest("parallel_tool_calls: gemini cannot turn parallel calls off", param="parallel_tool_calls")


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config = {GENERATION_CONFIG[k]: v for k, v in body.items() if k in GENERATION_CONFIG and v is not None}
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_object":
        config["responseMimeType"] = "application/json"
    elif fmt.get("type") == "json_schema":
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = (fmt.get("json_schema") or {}).get("schema", {})
    return config


def usage_from(meta: dict[str, Any]) -> dict[str, Any]:
    prompt = meta.get("promptTokenCount") or 0
    thoughts = meta.get("thoughtsTokenCount") or 0
    completion = (meta.get("candidatesTokenCount") or 0) + thoughts
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": meta.get("totalTokenCount") or prompt + completion,
    }
    if meta.get("cachedContentTokenCount"):
        out["prompt_tokens_details"] = {"cached_tokens": meta["cachedContentTokenCount"]}
    if thoughts:
        out["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return out


def _tool_call(part: dict[str, Any], response_id: str, candidate: int, n: int) -> dict[str, Any]:
    fc = part["functionCall"]
    call: dict[str, Any] = {
        "id": fc.get("id") or call_id(response_id, candidate, n, fc["name"]),
        "type": "function",
        "function": {"name": fc["name"], "arguments": dumps(fc.get("args") or {})},
    }
    if part.get("thoughtSignature"):
        call["thought_signature"] = part["thoughtSignature"]
    return call


@register("gemini")
class GeminiProvider(HTTPProvider):
    name = "gemini"
    endpoint_types = frozenset({CHAT, COMPLETIONS, EMBEDDINGS})
    config_model = GeminiConfig
    secret_fields = frozenset({"gemini_api_key"})
    config: GeminiConfig

    def _url(self, method: str) -> str:
        model = self.model.removeprefix("models/")
        return f"{self.config.gemini_api_base.rstrip('/')}/models/{model}:{method}"

    def _headers(self) -> dict[str, str]:
        # A header, not ?key=: URLs end up in logs.
        return {"x-goog-api-key": self.config.gemini_api_key.get_secret_value(), "Content-Type": "application/json"}

    def _generate(self, body: dict[str, Any], messages: list[dict[str, Any]], stream: bool) -> UpstreamRequest:
        self.unsupported(body, UNSUPPORTED)
        system, contents = translate_messages(messages)
        payload: dict[str, Any] = {"contents": contents}
        if system:
            payload["systemInstruction"] = system
        _tools(body, payload)
        config = _generation_config(body)
        if config:
            payload["generationConfig"] = config
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return UpstreamRequest(self._url(method), payload, self._headers())

    def chat_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        return self._generate(body, body["messages"], stream)

    def completions_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        self.unsupported(body, ("echo", "best_of"))
        return self._generate(body, prompt_messages(body, self.name), stream)

    def embeddings_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if not all(isinstance(t, str) for t in texts):
            raise InvalidRequest("input: gemini embeds text, not token ids", param="input")
        self.unsupported(body, ("user",))
        if body.get("encoding_format") == "base64":
            # The response translator does not see the request, so it cannot re-encode Gemini's floats.
            raise InvalidRequest("encoding_format: gemini answers floats only; use 'float'", param="encoding_format")
        model = "models/" + self.model.removeprefix("models/")
        requests = []
        for text in texts:
            req: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
            if body.get("dimensions"):
                req["outputDimensionality"] = body["dimensions"]
            if body.get("task_type"):  # ours: Gemini's taskType (RETRIEVAL_QUERY, ...), passed on
                req["taskType"] = body["task_type"]
            requests.append(req)
        return UpstreamRequest(self._url("batchEmbedContents"), {"requests": requests}, self._headers())

    # ---- responses ----------------------------------------------------------------------------

    def chat_response(self, data: dict[str, Any]) -> dict[str, Any]:
        response_id = data.get("responseId") or call_id(data)
        choices = []
        for i, cand in enumerate(data.get("candidates") or ()):
            parts = (cand.get("content") or {}).get("parts") or []
            text = "".join(p.get("text", "") for p in parts if "text" in p and not p.get("thought"))
            calls = [_tool_call(p, response_id, i, n) for n, p in enumerate(x for x in parts if "functionCall" in x)]
            message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
            if calls:
                message["tool_calls"] = calls
            finish = FINISH_REASONS.get(cand.get("finishReason"), "stop")
            if calls and finish == "stop":
                finish = "tool_calls"
            index = cand.get("index", i)
            choices.append({"index": index, "message": message, "finish_reason": finish, "logprobs": None})
        if not choices:  # the prompt itself was blocked (promptFeedback.blockReason)
            message = {"role": "assistant", "content": ""}
            choices = [{"index": 0, "message": message, "finish_reason": "content_filter", "logprobs": None}]
        return {
            "id": response_id,
            "object": "chat.completion",
            "created": now(),
            "model": data.get("modelVersion") or self.model,
            "choices": choices,
            "usage": usage_from(data.get("usageMetadata") or {}),
        }

    def completions_response(self, data: dict[str, Any]) -> dict[str, Any]:
        return completion_from_chat(self.chat_response(data))

    def embeddings_response(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "object": "list",
            "model": self.model,
            "data": [
                {"object": "embedding", "index": i, "embedding": e["values"]} for i, e in enumerate(data["embeddings"])
            ],
            "usage": {"prompt_tokens": 0, "total_tokens": 0},  # Gemini does not report embedding tokens
        }

    def chat_chunk(self, event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
        data = orjson.loads(event.data)
        if "error" in data:
            raise self.error(502, event.data.encode(), {})
        out = []
        if not state.id:
            state.id = data.get("responseId") or call_id(event.data)
            state.model = data.get("modelVersion") or self.model
            state.extra["tools"] = 0
            out.append(chunk(state, {"role": "assistant", "content": ""}))
        if data.get("usageMetadata"):
            state.usage = usage_from(data["usageMetadata"])
        for cand in data.get("candidates") or ():
            for part in (cand.get("content") or {}).get("parts") or ():
                if "functionCall" in part:
                    index = state.extra["tools"]
                    state.extra["tools"] += 1
                    call = _tool_call(part, state.id, cand.get("index", 0), index)
                    delta = tool_call_start(index, call["id"], call["function"]["name"], call["function"]["arguments"])
                    if "thought_signature" in call:
                        delta["tool_calls"][0]["thought_signature"] = call["thought_signature"]
                    out.append(chunk(state, delta))
                elif part.get("text") and not part.get("thought"):
                    out.append(chunk(state, {"content": part["text"]}))
            if cand.get("finishReason"):
                finish = FINISH_REASONS.get(cand["finishReason"], "stop")
                if state.extra["tools"] and finish == "stop":
                    finish = "tool_calls"
                state.finish_reason = finish
                out.append(chunk(state, finish=finish))
        if state.finish_reason and state.usage and not state.extra.get("usage_sent"):
            state.extra["usage_sent"] = True
            out.append(usage_chunk(state, state.usage))
        return out

    def completions_chunk(self, event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
        return [c for c in map(completion_chunk_from_chat, self.chat_chunk(event, state)) if c is not None]
