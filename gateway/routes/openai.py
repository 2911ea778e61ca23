"""OpenAI-compatible routes: /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.providers.base import CHAT, COMPLETIONS, EMBEDDINGS
from gateway.proxy import handle
from gateway.responses import ORJSONResponse


async def chat_completions(request: Request) -> Response:
    return await handle(request, "/v1/chat/completions", endpoint_type=CHAT)


async def completions(request: Request) -> Response:
    return await handle(request, "/v1/completions", endpoint_type=COMPLETIONS)


async def embeddings(request: Request) -> Response:
    return await handle(request, "/v1/embeddings", endpoint_type=EMBEDDINGS)


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
