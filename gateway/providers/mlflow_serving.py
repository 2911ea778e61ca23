"""MLflow model serving (`mlflow models serve`): `{url}/invocations` with MLflow's inputs/params payloads.

Requests and answers follow MLflow's own gateway provider: `{"inputs": [...], "params": {...}}`
in, `{"predictions": ...}` out. A served pyfunc has no tools, JSON mode, images or streams here,
so those are refused with a 400 rather than dropped.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from gateway.errors import InvalidRequest
from gateway.providers import register
from gateway.providers.base import CHAT, COMPLETIONS, EMBEDDINGS, HTTPProvider, UpstreamRequest
from gateway.providers.common import call_id, now, text_of

# Features a served pyfunc cannot take through MLflow's payloads.
UNSUPPORTED = ("tools", "tool_choice", "response_format", "functions", "function_call", "stream_options")


class MlflowServingConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    model_server_url: str


def _predictions(data: dict[str, Any]) -> list[Any]:
    """MLflow's accepted answer shapes: a list, or a dict with one key or with `choices`."""
    predictions = data["predictions"]
    if isinstance(predictions, dict):
        if "choices" in predictions:
            predictions = predictions["choices"]
        elif len(predictions) == 1:
            predictions = next(iter(predictions.values()))
        else:
            raise ValueError("predictions is a dict with several keys and no 'choices'")
    if not isinstance(predictions, list) or not predictions:
        raise ValueError("predictions is empty or not a list")
    return predictions


@register("mlflow-model-serving")
class MlflowServingProvider(HTTPProvider):
    name = "mlflow-model-serving"
    endpoint_types = frozenset({CHAT, COMPLETIONS, EMBEDDINGS})
    config_model = MlflowServingConfig
    requires_model_name = False
    config: MlflowServingConfig

    def _invocation(self, inputs: list[Any], params: dict[str, Any], stream: bool) -> UpstreamRequest:
        if stream:
            raise InvalidRequest(f"stream: not supported by provider {self.name!r}", param="stream")
        payload: dict[str, Any] = {"inputs": inputs}
        if params:
            payload["params"] = params
        url = self.config.model_server_url.rstrip("/") + "/invocations"
        return UpstreamRequest(url, payload, {"Content-Type": "application/json"})

    @staticmethod
    def _params(body: dict[str, Any], key: str) -> dict[str, Any]:
        return {k: v for k, v in body.items() if k not in (key, "model", "stream") and v is not None}

    def chat_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        self.unsupported(body, UNSUPPORTED)
        messages = body["messages"]
        if len(messages) != 1:
            raise InvalidRequest(
                f"messages: provider {self.name!r} takes a single message (MLflow chat models answer one query)",
                param="messages",
            )
        content = messages[0].get("content")
        if isinstance(content, list) and any(p.get("type") != "text" for p in content):
            raise InvalidRequest(f"messages[0].content: provider {self.name!r} takes text only", param="messages")
        return self._invocation([text_of(content)], self._params(body, "messages"), stream)

    def completions_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        prompt = body["prompt"]
        return self._invocation(prompt if isinstance(prompt, list) else [prompt], self._params(body, "prompt"), stream)

    def embeddings_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        self.unsupported(body, ("dimensions", "user"))
        if body.get("encoding_format") == "base64":
            raise InvalidRequest(f"encoding_format: provider {self.name!r} answers floats", param="encoding_format")
        inputs = body["input"]
        return self._invocation(inputs if isinstance(inputs, list) else [inputs], {}, stream)

    def _envelope(self, obj: str, choices: list[dict[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": call_id(data).replace("call_", "mlflow-"),
            "object": obj,
            "created": now(),
            "model": self.model or "mlflow-model",
            "choices": choices,
            "usage": None,  # a served pyfunc reports no token counts
        }

    def chat_response(self, data: dict[str, Any]) -> dict[str, Any]:
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": str(text)},
                "finish_reason": "stop",
                "logprobs": None,
            }
            for i, text in enumerate(_predictions(data))
        ]
        return self._envelope("chat.completion", choices, data)

    def completions_response(self, data: dict[str, Any]) -> dict[str, Any]:
        choices = [
            {"index": i, "text": str(text), "finish_reason": "stop", "logprobs": None}
            for i, text in enumerate(_predictions(data))
        ]
        return self._envelope("text_completion", choices, data)

    def embeddings_response(self, data: dict[str, Any]) -> dict[str, Any]:
        vectors = _predictions(data)
        if all(isinstance(x, int | float) for x in vectors):
            vectors = [vectors]  # one input answered as one flat vector
        return {
            "object": "list",
            "model": self.model or "mlflow-model",
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        }
