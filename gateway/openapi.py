"""The OpenAPI document at /openapi.json, built from the request models."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import TypeAdapter

from gateway import __version__
from gateway.schemas import ChatRequest, CompletionRequest, EmbeddingRequest

_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
            "required": ["message", "type"],
        }
    },
    "required": ["error"],
}
_DETAIL = {"type": "object", "properties": {"detail": {}}, "required": ["detail"]}
_OBJECT = {"type": "object"}
# One server-sent event (what OpenAPI 3.2 calls the itemSchema of text/event-stream).
_EVENT = {
    "type": "object",
    "properties": {"data": {"type": "string"}, "event": {"type": "string"}},
    "required": ["data"],
}


_REF = "#/components/schemas/{model}"


def _body_schema(model: type) -> dict[str, Any]:
    # Nested models must be referenced under components: pydantic's default "#/$defs/..." does not
    # resolve inside an OpenAPI document.
    schema: dict[str, Any] = TypeAdapter(model).json_schema(ref_template=_REF)
    schema.pop("$defs", None)
    return schema


def _components() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for model in (ChatRequest, CompletionRequest, EmbeddingRequest):
        defs.update(TypeAdapter(model).json_schema(ref_template=_REF).get("$defs", {}))
    return defs


def _responses(error: dict[str, Any], *, stream: bool = False) -> dict[str, Any]:
    ok: dict[str, Any] = {"application/json": {"schema": _OBJECT}}
    if stream:
        ok["text/event-stream"] = {"schema": _EVENT}
    out: dict[str, Any] = {"200": {"description": "OK", "content": ok}}
    for code in ("400", "401", "403", "404", "413", "422", "429", "431", "502", "503", "504"):
        out[code] = {"description": "error", "content": {"application/json": {"schema": error}}}
    return out


def _post(summary: str, model: type, error: dict[str, Any], *, stream: bool = True) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _body_schema(model)}}},
            "responses": _responses(error, stream=stream),
        }
    }


def _get(summary: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK", "content": {"application/json": {"schema": _OBJECT}}}}
    if error is not None:
        responses["404"] = {"description": "not found", "content": {"application/json": {"schema": error}}}
    return {"get": {"summary": summary, "responses": responses}}


_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]


def _with_name(op: dict[str, Any]) -> dict[str, Any]:
    for method in op.values():
        method["parameters"] = _NAME
    return op


@functools.cache
def openapi_schema() -> dict[str, Any]:
    invocation = {
        "oneOf": [
            _body_schema(ChatRequest),
            _body_schema(CompletionRequest),
            _body_schema(EmbeddingRequest),
        ]
    }
    inv_op = {
        "post": {
            "summary": "Invoke an endpoint (MLflow deployments API); the body is OpenAI's without 'model'",
            "requestBody": {"required": True, "content": {"application/json": {"schema": invocation}}},
            "responses": _responses(_DETAIL, stream=True),
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "LLM Gateway", "version": __version__},
        "paths": {
            "/v1/chat/completions": _post("Chat completion (OpenAI)", ChatRequest, _ERROR),
            "/v1/completions": _post("Text completion (OpenAI)", CompletionRequest, _ERROR),
            "/v1/embeddings": _post("Embeddings (OpenAI)", EmbeddingRequest, _ERROR, stream=False),
            "/v1/models": _get("List endpoints as models (OpenAI)"),
            "/v1/models/{name}": _with_name(_get("One endpoint as a model (OpenAI)", _ERROR)),
            "/api/2.0/endpoints/": _get("List endpoints (MLflow)"),
            "/api/2.0/endpoints/{name}": _with_name(_get("Get an endpoint (MLflow)", _DETAIL)),
            "/api/2.0/gateway/routes/": _get("List routes (legacy MLflow)"),
            "/api/2.0/gateway/routes/{name}": _with_name(_get("Get a route (legacy MLflow)", _DETAIL)),
            "/endpoints/{name}/invocations": _with_name(dict(inv_op)),
            "/gateway/{name}/invocations": _with_name({"post": dict(inv_op["post"])}),
            "/health": _get("Health, config version and endpoint availability"),
            "/admin/reload": {
                "post": {
                    "summary": "Reload the config file now (admin key when auth is on)",
                    "responses": {
                        "200": {
                            "description": "reloaded or unchanged",
                            "content": {"application/json": {"schema": _OBJECT}},
                        },
                        "422": {
                            "description": "the new config was refused; the old one keeps serving",
                            "content": {"application/json": {"schema": _OBJECT}},
                        },
                        "409": {
                            "description": "not started from a config file",
                            "content": {"application/json": {"schema": _ERROR}},
                        },
                    },
                }
            },  # fmt: skip
            "/api/traces": {
                "get": {
                    "summary": "Call records, newest first (admin key when auth is on)",
                    "parameters": [
                        {"name": "endpoint", "in": "query", "schema": {"type": "string"}},
                        {"name": "status", "in": "query", "schema": {"type": "string"}},
                        {"name": "since", "in": "query", "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {"description": "OK", "content": {"application/json": {"schema": _OBJECT}}},
                        "400": {"description": "a bad filter", "content": {"application/json": {"schema": _ERROR}}},
                        "404": {"description": "no trace store", "content": {"application/json": {"schema": _ERROR}}},
                    },
                }
            },
            "/api/traces/{id}": {
                "get": {
                    "summary": "One call record (admin key when auth is on)",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {"description": "OK", "content": {"application/json": {"schema": _OBJECT}}},
                        "404": {"description": "unknown id", "content": {"application/json": {"schema": _ERROR}}},
                    },
                }
            },
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "OK"}}}},
        },
        "components": {"schemas": _components()},
    }
