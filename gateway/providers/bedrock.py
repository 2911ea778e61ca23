"""Amazon Bedrock Converse / ConverseStream <-> OpenAI chat and completions.

Translation is pure, like every adapter's. Two things HTTPProvider cannot do are added here:
SigV4 signing of each request (botocore, the optional `bedrock` extra: signing is not
hand-rolled) and decoding ConverseStream's binary AWS event stream instead of SSE. Each decoded
event is handed to `chat_chunk` as an SSEEvent (event = the `:event-type` header, data = its JSON
payload), so the translator and its golden tests look like every other provider's.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.errors import EndpointUnavailable, InvalidRequest, UpstreamUnavailable
from gateway.providers import register
from gateway.providers.base import CHAT, COMPLETIONS, HTTPProvider, StreamChunk, StreamState, UpstreamRequest
from gateway.providers.common import (
    call_id,
    chunk,
    completion_chunk_from_chat,
    completion_from_chat,
    data_url,
    now,
    parse_arguments,
    prompt_messages,
    text_of,
    tool_call_args,
    tool_call_start,
    usage,
    usage_chunk,
)
from gateway.streaming import SSEEvent
from gateway.upstream import UpstreamResponse

_ENV_RE = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$")
INSTALL_HINT = "bedrock needs botocore: pip install 'llm-gateway[bedrock]'"


class AWSConfig(BaseModel):
    """MLflow's aws_config shapes in one model: bearer token, role ARN, access keys, or the default chain."""

    model_config = ConfigDict(extra="forbid")
    aws_region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    aws_role_arn: str | None = None
    session_length_seconds: int = Field(15 * 60, ge=900)
    aws_bearer_token: str | None = None


class BedrockConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    aws_config: AWSConfig = Field(default_factory=AWSConfig)

    @field_validator("aws_config", mode="before")
    @classmethod
    def _botocore_installed(cls, value: Any) -> Any:
        try:
            import botocore  # noqa: F401
        except ImportError:
            raise ValueError(INSTALL_HINT) from None
        return value


def _resolve(value: str | None, key: str) -> str | None:
    """`$VAR` inside aws_config (MLflow leaves these unresolved); a missing variable is a 503 naming it."""
    if value is None:
        return None
    match = _ENV_RE.match(value.strip())
    if not match:
        return value
    resolved = os.environ.get(match.group(1))
    if resolved is None:
        raise EndpointUnavailable(
            f"model.config.aws_config.{key}: environment variable {match.group(1)} is not set",
            code="endpoint_unavailable",
        )
    return resolved


STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
UNSUPPORTED = (
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "user",
    "response_format",
)
IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}


def _content(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            blocks.append({"text": part.get("text", "")})
        elif kind == "image_url":
            mime, data = data_url((part.get("image_url") or {}).get("url", ""), f"{where}.content[{j}]", "bedrock")
            if mime not in IMAGE_FORMATS:
                raise InvalidRequest(f"{where}.content[{j}]: bedrock takes png, jpeg, gif or webp images", param=where)
            blocks.append({"image": {"format": IMAGE_FORMATS[mime], "source": {"bytes": data}}})
        else:
            raise InvalidRequest(f"{where}.content[{j}].type: {kind!r} is not supported by bedrock", param=where)
    return blocks


def translate_messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """OpenAI messages -> (Converse system blocks, Converse messages with alternating roles)."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        role, where = msg["role"], f"messages[{i}]"
        if role in ("system", "developer"):
            system.append({"text": text_of(msg.get("content"))})
            continue
        if role == "tool":
            text = text_of(msg.get("content"))
            try:
                parsed = orjson.loads(text)
                result = [{"json": parsed}] if isinstance(parsed, dict) else [{"text": text}]
            except orjson.JSONDecodeError:
                result = [{"text": text}]
            blocks = [{"toolResult": {"toolUseId": msg.get("tool_call_id"), "content": result}}]
            role = "user"
        elif role in ("user", "assistant"):
            blocks = _content(msg.get("content"), where)
            for call in msg.get("tool_calls") or () if role == "assistant" else ():
                fn = call.get("function") or {}
                args = parse_arguments(fn.get("arguments"), f"{where}.tool_calls")
                blocks.append({"toolUse": {"toolUseId": call.get("id"), "name": fn.get("name"), "input": args}})
        else:
            raise InvalidRequest(
                f"{where}.role: {role!r} messages are not supported by bedrock; use tools", param=where
            )
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)  # Converse wants alternating roles
        else:
            out.append({"role": role, "content": blocks})
    return system, out


def _tool_config(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None  # Converse has no "none": leaving the tools out is the same
    specs = []
    for i, tool in enumerate(tools):
        if tool.get("type") != "function":
            raise InvalidRequest(f"tools[{i}].type: only function tools are supported by bedrock", param="tools")
        fn = tool["function"]
        spec = {
            "name": fn["name"],
            "inputSchema": {"json": fn.get("parameters") or {"type": "object", "properties": {}}},
        }
        if fn.get("description"):
            spec["description"] = fn["description"]
        specs.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": specs}
    if isinstance(choice, dict):
        config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    return config


def usage_from(u: dict[str, Any]) -> dict[str, Any]:
    cached = u.get("cacheReadInputTokens") or 0
    prompt = (u.get("inputTokens") or 0) + cached + (u.get("cacheWriteInputTokens") or 0)
    return usage(prompt, u.get("outputTokens"), cached)


@register("bedrock", "amazon-bedrock")
class BedrockProvider(HTTPProvider):
    name = "bedrock"
    endpoint_types = frozenset({CHAT, COMPLETIONS})
    config_model = BedrockConfig
    config: BedrockConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._credentials: Any = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    # ---- translation (pure) -------------------------------------------------------------------

    @property
    def region(self) -> str:
        return self.config.aws_config.aws_region or os.environ.get("AWS_REGION") or "us-east-1"

    def _converse(self, body: dict[str, Any], messages: list[dict[str, Any]], stream: bool) -> UpstreamRequest:
        self.unsupported(body, UNSUPPORTED)
        if (body.get("n") or 1) > 1:
            raise InvalidRequest("n: bedrock returns one choice per request; n must be 1", param="n")
        if body.get("parallel_tool_calls") is False:
            raise InvalidRequest(
                "parallel_tool_calls: bedrock cannot turn parallel calls off", param="parallel_tool_calls"
            )
        system, converse_messages = translate_messages(messages)
        payload: dict[str, Any] = {"messages": converse_messages}
        if system:
            payload["system"] = system
        inference: dict[str, Any] = {}
        if body.get("max_tokens") or body.get("max_completion_tokens"):
            inference["maxTokens"] = body.get("max_tokens") or body.get("max_completion_tokens")
        if body.get("temperature") is not None:
            inference["temperature"] = body["temperature"]
        if body.get("top_p") is not None:
            inference["topP"] = body["top_p"]
        stop = body.get("stop")
        if stop:
            inference["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
        if inference:
            payload["inferenceConfig"] = inference
        if body.get("top_k") is not None:
            payload["additionalModelRequestFields"] = {"top_k": body["top_k"]}
        tool_config = _tool_config(body)
        if tool_config:
            payload["toolConfig"] = tool_config
        path = "converse-stream" if stream else "converse"
        url = f"https://bedrock-runtime.{self.region}.amazonaws.com/model/{quote(self.model, safe='')}/{path}"
        return UpstreamRequest(url, payload, {"Content-Type": "application/json", "Accept": "application/json"})

    def chat_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        return self._converse(body, body["messages"], stream)

    def completions_request(self, body: dict[str, Any], stream: bool) -> UpstreamRequest:
        self.unsupported(body, ("echo", "best_of"))
        return self._converse(body, prompt_messages(body, self.name), stream)

    def chat_response(self, data: dict[str, Any]) -> dict[str, Any]:
        text, calls = [], []
        for block in data["output"]["message"]["content"]:
            if "text" in block:
                text.append(block["text"])
            elif "toolUse" in block:
                use = block["toolUse"]
                fn = {"name": use["name"], "arguments": orjson.dumps(use.get("input") or {}).decode()}
                calls.append({"id": use["toolUseId"], "type": "function", "function": fn})
        message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
        if calls:
            message["tool_calls"] = calls
        finish = STOP_REASONS.get(data.get("stopReason"), "stop")
        return {
            "id": call_id(data).replace("call_", "chatcmpl-"),
            "object": "chat.completion",
            "created": now(),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": usage_from(data.get("usage") or {}),
        }

    def completions_response(self, data: dict[str, Any]) -> dict[str, Any]:
        return completion_from_chat(self.chat_response(data))

    def chat_chunk(self, event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
        data = orjson.loads(event.data)
        kind = event.event
        if kind == "messageStart":
            state.id = state.id or call_id(event.data, state.created).replace("call_", "chatcmpl-")
            state.model = self.model
            state.extra["tools"] = {}
            return [chunk(state, {"role": "assistant", "content": ""})]
        if kind == "contentBlockStart":
            use = (data.get("start") or {}).get("toolUse")
            if not use:
                return []
            tools = state.extra["tools"]
            index = tools.setdefault(data.get("contentBlockIndex", 0), len(tools))
            return [chunk(state, tool_call_start(index, use["toolUseId"], use["name"]))]
        if kind == "contentBlockDelta":
            delta = data.get("delta") or {}
            if delta.get("text"):
                return [chunk(state, {"content": delta["text"]})]
            partial = (delta.get("toolUse") or {}).get("input")
            if partial:
                index = state.extra["tools"][data.get("contentBlockIndex", 0)]
                return [chunk(state, tool_call_args(index, partial))]
            return []
        if kind == "messageStop":
            state.finish_reason = STOP_REASONS.get(data.get("stopReason"), "stop")
            return [chunk(state, finish=state.finish_reason)]
        if kind == "metadata":
            state.usage = usage_from(data.get("usage") or {})
            return [usage_chunk(state, state.usage)]
        return []  # contentBlockStop

    def completions_chunk(self, event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
        return [c for c in map(completion_chunk_from_chat, self.chat_chunk(event, state)) if c is not None]

    # ---- I/O that HTTPProvider does not have: SigV4 and the AWS event stream ------------------

    async def _frozen_credentials(self) -> Any:
        from botocore.credentials import Credentials
        from botocore.session import Session

        aws = self.config.aws_config
        async with self._lock:
            if self._credentials is not None and (self._expires == 0 or time.time() < self._expires - 60):
                return self._credentials
            key_id = _resolve(aws.aws_access_key_id, "aws_access_key_id")
            secret = _resolve(aws.aws_secret_access_key, "aws_secret_access_key")
            token = _resolve(aws.aws_session_token, "aws_session_token")
            role = _resolve(aws.aws_role_arn, "aws_role_arn")
            if key_id and secret:
                creds = Credentials(key_id, secret, token)
                self._expires = 0
            else:
                # The default chain (env, profile, instance role) may call the network: off the loop.
                creds = await asyncio.to_thread(lambda: Session().get_credentials())
                if creds is None:
                    raise EndpointUnavailable("bedrock: no AWS credentials found (set aws_config or AWS_* variables)")
                creds = await asyncio.to_thread(creds.get_frozen_credentials)
                self._expires = time.time() + 300
            if role:
                creds = await asyncio.to_thread(self._assume_role, creds, role, aws.session_length_seconds)
                self._expires = time.time() + aws.session_length_seconds
            self.secrets = tuple(s for s in (*self.secrets, creds.secret_key, creds.token) if s)
            self._credentials = creds
            return creds

    def _assume_role(self, creds: Any, role: str, seconds: int) -> Any:
        import boto3
        from botocore.credentials import Credentials

        sts = boto3.client(
            "sts",
            region_name=self.region,
            aws_access_key_id=creds.access_key,
            aws_secret_access_key=creds.secret_key,
            aws_session_token=creds.token,
        )
        got = sts.assume_role(RoleArn=role, RoleSessionName="llm-gateway", DurationSeconds=seconds)["Credentials"]
        return Credentials(got["AccessKeyId"], got["SecretAccessKey"], got["SessionToken"])

    async def _sign(self, up: UpstreamRequest, body: bytes) -> Mapping[str, str]:
        headers = dict(up.headers)
        bearer = _resolve(self.config.aws_config.aws_bearer_token, "aws_bearer_token")
        if bearer:
            self.secrets = tuple({*self.secrets, bearer})
            headers["Authorization"] = f"Bearer {bearer}"  # a Bedrock API key: no signing
            return headers
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        creds = await self._frozen_credentials()
        request = AWSRequest(method="POST", url=up.url, data=body, headers=headers)
        SigV4Auth(creds, "bedrock", self.region).add_auth(request)
        return dict(request.headers.items())

    def stream_batches(
        self, endpoint_type: str, body: dict[str, Any], state: StreamState
    ) -> AsyncIterator[list[StreamChunk]]:
        state.id = state.id or "chatcmpl-" + uuid.uuid4().hex  # ConverseStream names no message id
        return super().stream_batches(endpoint_type, body, state)

    async def _read_events(self, response: UpstreamResponse) -> AsyncIterator[list[SSEEvent]]:
        """ConverseStream's binary event stream (decoded by botocore), as events of each read."""
        from botocore.eventstream import EventStreamBuffer, ParserError

        buffer = EventStreamBuffer()
        async for raw in response.iter_bytes():
            buffer.add_data(raw)
            try:
                messages = list(buffer)
            except ParserError as exc:
                raise UpstreamUnavailable(
                    f"upstream {self.name} sent a malformed event stream ({type(exc).__name__})",
                    code="upstream_bad_body",
                ) from exc
            events = []
            for message in messages:
                headers = message.headers
                if headers.get(":message-type") == "exception":
                    if events:
                        yield events  # what came before the exception goes out first
                    kind = headers.get(":exception-type", "exception")
                    status = 429 if kind == "throttlingException" else 502
                    raise self.error(status, message.payload, {})
                events.append(SSEEvent(message.payload.decode("utf-8", "replace"), headers.get(":event-type")))
            yield events
