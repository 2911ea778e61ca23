"""OpenAI-compatible routes: /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import InvalidRequest
from gateway.providers.base import CHAT, COMPLETIONS, EMBEDDINGS
from gateway.proxy import proxy, read_json, validate
from gateway.responses import ORJSONResponse


async def _handle(request: Request, endpoint_type: str, route: str) -> Response:
    body = await read_json(request, request.app.state.max_body_bytes)
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("model: field required (the name of a gateway endpoint)", param="model")
    endpoint = request.app.state.router.get(name, endpoint_type)
    validate(endpoint_type, body)
    return await proxy(request, endpoint, body, route)


async def chat_completions(request: Request) -> Response:
    return await _handle(request, CHAT, "/v1/chat/completions")


async def completions(request: Request) -> Response:
    return await _handle(request, COMPLETIONS, "/v1/completions")


async def embeddings(request: Request) -> Response:
    return await _handle(request, EMBEDDINGS, "/v1/embeddings")


async def list_models(request: Request) -> Response:
    router = request.app.state.router
    created = int(router.created)
    data = [
        {"id": ep.name, "object": "model", "created": created, "owned_by": ep.config.model.provider}
        for ep in router.endpoints.values()
    ]
    return ORJSONResponse({"object": "list", "data": data})


async def get_model(request: Request) -> Response:
    ep = request.app.state.router.get(request.path_params["name"])
    created = int(request.app.state.router.created)
    return ORJSONResponse({"id": ep.name, "object": "model", "created": created, "owned_by": ep.config.model.provider})


routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{name:path}", get_model, methods=["GET"]),
]
