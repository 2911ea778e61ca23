"""Hugging Face Text Generation Inference: its Messages API for chat, /generate for completions."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, SecretStr

from gateway.errors import InvalidRequest
from gateway.providers import register
from gateway.providers.base import CHAT, COMPLETIONS, StreamState, UpstreamRequest
from gateway.providers.common import call_id, dumps, now, usage
from gateway.providers.openai_compatible import OpenAICompatibleProvider
from gateway.streaming import SSEEvent


class TGIConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    hf_server_url: str
    hf_api_key: SecretStr | None = None  # ours: for Inference Endpoints that need a token


FINISH_REASONS = {"eos_token": "stop", "stop_sequence": "stop", "length": "length", "stop": "stop"}
# OpenAI name -> /generate parameter name.
GENERATE_PARAMS = {
    "max_tokens": "max_new_tokens",
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
}


@register("huggingface-text-generation-inference")
class TGIProvider(OpenAICompatibleProvider):
    name = "huggingface-text-generation-inference"
    endpoint_types = frozenset({CHAT, COMPLETIONS})
    config_model = TGIConfig
    secret_fields = frozenset({"hf_api_key"})
    key_field = "hf_api_key"
    requires_model_name = False  # a TGI server serves one model
    unsupported_params = ("logit_bias", "user", "service_tier")
    max_n = 1
    config: TGIConfig

    def _base(self) -> str:
        return self.config.hf_server_url.rstrip("/") + "/v1"

    def chat_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        up = super().chat_request(body, stream)
        up.json["model"] = self.model or "tgi"
        fmt = up.json.get("response_format") or {}
        # TGI's grammar-constrained output takes the schema as `value`.
        if fmt.get("type") == "json_schema":
            up.json["response_format"] = {"type": "json_object", "value": (fmt.get("json_schema") or {}).get("schema")}
        elif fmt.get("type") == "json_object" and "value" not in fmt:
            up.json["response_format"] = {"type": "json_object", "value": {"type": "object"}}
        return up

    def chat_response(self, data: dict[str, Any]) -> dict[str, Any]:
        data = super().chat_response(data)
        data["id"] = data.get("id") or call_id(data).replace("call_", "chatcmpl-")  # TGI sends ""
        for choice in data["choices"]:
            finish = FINISH_REASONS.get(choice.get("finish_reason"), choice.get("finish_reason"))
            calls = (choice.get("message") or {}).get("tool_calls")
            for call in calls or ():
                fn = call["function"]
                fn.pop("description", None)  # TGI echoes the tool's description (null) here
                if not isinstance(fn.get("arguments"), str):
                    fn["arguments"] = dumps(fn.get("arguments") or {})  # TGI answers an object
            # TGI says "stop"/"eos_token" after a tool call; OpenAI clients look for "tool_calls".
            choice["finish_reason"] = "tool_calls" if calls and finish == "stop" else finish
        return data

    def chat_chunk(self, event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
        if event.data != "[DONE]":
            data = orjson.loads(event.data)
            if not data.get("id"):  # TGI sends "": one stable id per stream instead
                data["id"] = state.extra.setdefault("id", call_id(event.data).replace("call_", "chatcmpl-"))
            for choice in data.get("choices") or ():
                delta = choice.get("delta") or {}
                # Older TGI sends one tool call as an object, not a list.
                if isinstance(delta.get("tool_calls"), dict):
                    delta["tool_calls"] = [delta["tool_calls"]]
                if choice.get("finish_reason"):
                    finish = FINISH_REASONS.get(choice["finish_reason"], choice["finish_reason"])
                    choice["finish_reason"] = "tool_calls" if state.extra.get("tools") and finish == "stop" else finish
                if delta.get("tool_calls") and delta.get("role"):
                    del delta["role"]  # TGI repeats the role on every tool delta
                    if "tools" not in state.extra:
                        delta["role"] = "assistant"
            event = SSEEvent(orjson.dumps(data).decode(), event.event)
        return super().chat_chunk(event, state)

    # ---- completions: /generate and /generate_stream ------------------------------------------

    def completions_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        self.unsupported(body, ("logit_bias", "user", "suffix", "echo", "best_of", "logprobs", "presence_penalty"))
        if (body.get("n") or 1) > 1:
            raise InvalidRequest(f"n: provider {self.name!r} returns one completion per request", param="n")
        prompt = body["prompt"]
        if isinstance(prompt, list):
            if len(prompt) != 1:
                raise InvalidRequest(f"prompt: provider {self.name!r} takes one prompt per request", param="prompt")
            prompt = prompt[0]
        params: dict[str, Any] = {
            GENERATE_PARAMS[k]: v for k, v in body.items() if k in GENERATE_PARAMS and v is not None
        }
        temperature = body.get("temperature")
        if temperature == 0:
            params["do_sample"] = False  # TGI refuses temperature 0: greedy decoding is the same thing
        elif temperature is not None:
            params["temperature"] = temperature
            params["do_sample"] = True
        stop = body.get("stop")
        if stop:
            params["stop"] = [stop] if isinstance(stop, str) else list(stop)
        params["details"] = True  # token counts
        if not stream:
            params["decoder_input_details"] = True  # the prompt's tokens, for usage
        path = "/generate_stream" if stream else "/generate"
        return UpstreamRequest(
            self.config.hf_server_url.rstrip("/") + path, {"inputs": prompt, "parameters": params}, self._headers()
        )

    def completions_response(self, data: dict[str, Any]) -> dict[str, Any]:
        details = data.get("details") or {}
        prompt_tokens = details.get("input_length") or len(details.get("prefill") or ())
        return {
            "id": call_id(data.get("generated_text"), details.get("seed")).replace("call_", "cmpl-"),
            "object": "text_completion",
            "created": now(),
            "model": self.model or "tgi",
            "choices": [
                {
                    "index": 0,
                    "text": data["generated_text"],
                    "finish_reason": FINISH_REASONS.get(details.get("finish_reason"), "stop"),
                    "logprobs": None,
                }
            ],
            "usage": usage(prompt_tokens, details.get("generated_tokens")),
        }

    def completions_chunk(self, event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
        data = orjson.loads(event.data)
        if "error" in data:
            raise self.error(502, event.data.encode(), {})
        if not state.id:
            state.id = call_id(event.data).replace("call_", "cmpl-")
            state.model = self.model or "tgi"
        token = data.get("token") or {}
        base = {"id": state.id, "object": "text_completion", "created": state.created, "model": state.model}
        out = []
        if token.get("text") and not token.get("special"):
            out.append(
                {**base, "choices": [{"index": 0, "text": token["text"], "finish_reason": None, "logprobs": None}]}
            )
        details = data.get("details")
        if details:
            state.finish_reason = FINISH_REASONS.get(details.get("finish_reason"), "stop")
            state.usage = usage(details.get("input_length"), details.get("generated_tokens"))
            out.append(
                {**base, "choices": [{"index": 0, "text": "", "finish_reason": state.finish_reason, "logprobs": None}]}
            )
            out.append({**base, "choices": [], "usage": state.usage})
        return out
