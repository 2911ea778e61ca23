"""OpenAI-compatible routes: /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.auth import may_call
from gateway.errors import EndpointNotFound
from gateway.providers.base import CHAT, COMPLETIONS, EMBEDDINGS
from gateway.proxy import handle
from gateway.responses import ORJSONResponse, ProxyResponse


async def chat_completions(request: Request) -> ProxyResponse:
    return await handle(request, "/v1/chat/completions", endpoint_type=CHAT)


async def completions(request: Request) -> ProxyResponse:
    return await handle(request, "/v1/completions", endpoint_type=COMPLETIONS)


async def embeddings(request: Request) -> ProxyResponse:
    return await handle(request, "/v1/embeddings", endpoint_type=EMBEDDINGS)


async def list_models(request: Request) -> Response:
    router = request.app.state.router
    created = int(router.created)
    data = [
        {"id": ep.name, "object": "model", "created": created, "owned_by": ep.config.model.provider}
        for ep in router.endpoints.values()
        if may_call(request.scope, ep.name)
    ]
    return ORJSONResponse({"object": "list", "data": data})


async def get_model(request: Request) -> Response:
    name = request.path_params["name"]
    if not may_call(request.scope, name):
        # The same answer as for a name that does not exist: a key learns nothing about others' endpoints.
        raise EndpointNotFound(f"endpoint {name!r} is not configured", param="model", code="endpoint_not_found")
    ep = request.app.state.router.get(name)
    created = int(request.app.state.router.created)
    return ORJSONResponse({"id": ep.name, "object": "model", "created": created, "owned_by": ep.config.model.provider})


routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{name:path}", get_model, methods=["GET"]),
]
