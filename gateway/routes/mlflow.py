"""MLflow deployments-server routes, so `mlflow.deployments.get_deploy_client(url)` works unchanged.

Errors here keep MLflow's `{"detail": ...}` body and its 422 for an invalid request body.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.auth import may_call
from gateway.errors import EndpointNotFound, InvalidRequest
from gateway.proxy import handle
from gateway.responses import ORJSONResponse, ProxyResponse
from gateway.router import Endpoint

PAGE_SIZE = 500
MODEL_FIELD_MESSAGE = (
    "The parameter 'model' is not permitted to be passed. The route being queried already defines a model instance."
)


def endpoint_object(ep: Endpoint) -> dict[str, Any]:
    cfg = ep.config
    limit = cfg.limit
    return {
        "name": cfg.name,
        "endpoint_type": cfg.endpoint_type,
        "model": {"name": cfg.model.name, "provider": cfg.model.provider},
        "endpoint_url": f"/gateway/{cfg.name}/invocations",
        # MLflow 3.x clients fail when "limit" is absent, so it is always there (null when unset).
        "limit": {"calls": limit.calls, "key": limit.key, "renewal_period": limit.renewal_period} if limit else None,
    }


def legacy_route_object(ep: Endpoint) -> dict[str, Any]:
    cfg = ep.config
    return {
        "name": cfg.name,
        "route_type": cfg.endpoint_type,
        "model": {"name": cfg.model.name, "provider": cfg.model.provider},
        "route_url": f"/gateway/{cfg.name}/invocations",
        "limit": endpoint_object(ep)["limit"],
    }


def _page(request: Request) -> tuple[list[Endpoint], str | None]:
    token = request.query_params.get("page_token")
    start = 0
    if token:
        try:
            start = int(orjson.loads(base64.b64decode(token, validate=True))["index"])
        except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            raise InvalidRequest("page_token: invalid page token", param="page_token") from None
    endpoints = [ep for ep in request.app.state.router.endpoints.values() if may_call(request.scope, ep.name)]
    end = start + PAGE_SIZE
    next_token = base64.b64encode(orjson.dumps({"index": end})).decode() if len(endpoints) > end else None
    return endpoints[start:end], next_token


async def list_endpoints(request: Request) -> Response:
    page, next_token = _page(request)
    return ORJSONResponse({"endpoints": [endpoint_object(ep) for ep in page], "next_page_token": next_token})


def _visible_endpoint(request: Request) -> Endpoint:
    name = request.path_params["name"]
    if not may_call(request.scope, name):
        raise EndpointNotFound(f"endpoint {name!r} is not configured", code="endpoint_not_found")
    endpoint: Endpoint = request.app.state.router.get(name)
    return endpoint


async def get_endpoint(request: Request) -> Response:
    return ORJSONResponse(endpoint_object(_visible_endpoint(request)))


async def list_routes(request: Request) -> Response:
    page, next_token = _page(request)
    return ORJSONResponse({"routes": [legacy_route_object(ep) for ep in page], "next_page_token": next_token})


async def get_route(request: Request) -> Response:
    return ORJSONResponse(legacy_route_object(_visible_endpoint(request)))


def _invocations(route: str) -> Callable[[Request], Awaitable[ProxyResponse]]:
    """The handler for one of MLflow's two invocation URLs (`route` is also the metrics label)."""

    async def invoke(request: Request) -> ProxyResponse:
        return await handle(request, route, endpoint_name=request.path_params["name"], refuse_model=MODEL_FIELD_MESSAGE)

    return invoke


routes = [
    Route("/api/2.0/endpoints/", list_endpoints, methods=["GET"]),
    Route("/api/2.0/endpoints/{name}", get_endpoint, methods=["GET"]),
    Route("/api/2.0/gateway/routes/", list_routes, methods=["GET"]),
    Route("/api/2.0/gateway/routes/{name}", get_route, methods=["GET"]),
    *(
        Route(path, _invocations(path), methods=["POST"])
        for path in ("/endpoints/{name}/invocations", "/gateway/{name}/invocations")
    ),
]
