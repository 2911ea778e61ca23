"""build_app(config) -> Starlette. The lifespan owns what requests share: the HTTP client, router, writer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import __version__, metrics
from gateway.auth import MLFLOW_PREFIXES, AuthMiddleware, AuthSettings
from gateway.config import GatewayConfig
from gateway.errors import GatewayError, client_status
from gateway.openapi import openapi_schema
from gateway.ratelimit import make_store
from gateway.reload import ConfigReloader
from gateway.responses import ORJSONResponse
from gateway.router import Endpoint, EndpointRouter
from gateway.routes import mlflow as mlflow_routes, openai as openai_routes, traces as traces_routes
from gateway.upstream import UpstreamClient
from tracking.sink import BatchingWriter, NullSink, Sink

logger = logging.getLogger("gateway")
Handler = Callable[[Request], Awaitable[ASGIApp]]


class GatewayApp(Starlette):
    """Starlette, with the proxy routes dispatched before its middleware and router.

    Every call pays for each layer of Starlette's stack (error middleware, exception handlers,
    route matching, the request/response wrapper): about a tenth of the CPU of a proxied call
    under load. The proxy routes are a handful of fixed paths, so a dict lookup finds them and one
    try/except gives them the same error handling; auth is an AuthMiddleware of their own, and
    everything else (GET routes, 404s, 405s) goes through Starlette as before.
    """

    def __init__(self, *, auth: AuthSettings | None, fast_routes: dict[str, Handler], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fast_routes = {path: h for path, h in fast_routes.items() if not path.endswith("/invocations")}
        # "/endpoints/{name}/invocations" -> {"endpoints": handler}
        self.fast_prefixes = {
            path.split("/")[1]: h for path, h in fast_routes.items() if path.endswith("/{name}/invocations")
        }
        self.fast_app = AuthMiddleware(self._serve, auth=auth)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            handler = self.fast_routes.get(path)
            if handler is None and path.endswith("/invocations"):
                prefix, _, rest = path[1:].partition("/")
                name = rest[: -len("/invocations")]
                handler = self.fast_prefixes.get(prefix)
                if handler is not None and name and "/" not in name:
                    scope["path_params"] = {"name": name}
                else:
                    handler = None
            if handler is not None:
                scope["gateway.start"] = time.perf_counter()  # before auth: overhead counts all of our time
                scope["app"] = self
                scope["gateway.handler"] = handler
                await self.fast_app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await scope["gateway.handler"](request)
        except GatewayError as exc:
            response = await gateway_error_handler(request, exc)
        except ClientDisconnect:
            return  # recorded as 499; nobody is left to answer
        except Exception as exc:
            response = await internal_error_handler(request, exc)
        await response(scope, receive, send)


def _is_mlflow_route(request: Request) -> bool:
    return request.url.path.startswith(MLFLOW_PREFIXES)


async def gateway_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    if _is_mlflow_route(request):
        status = client_status(exc, mlflow=True)
        return ORJSONResponse({"detail": exc.message}, status_code=status, headers=exc.headers)
    return ORJSONResponse(exc.to_dict(), status_code=exc.status_code, headers=exc.headers)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if _is_mlflow_route(request):
        return ORJSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    body = {
        "error": {
            "message": f"{request.method} {request.url.path}: {exc.detail}",
            "type": kind,
            "param": None,
            "code": None,
        }
    }
    return ORJSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def internal_error_handler(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if _is_mlflow_route(request):
        return ORJSONResponse({"detail": "internal error"}, status_code=500)
    body = {"error": {"message": "internal error", "type": "server_error", "param": None, "code": None}}
    return ORJSONResponse(body, status_code=500)


async def health(request: Request) -> Response:
    router: EndpointRouter = request.app.state.router
    endpoints = {name: _endpoint_health(ep) for name, ep in router.endpoints.items()}
    writer: BatchingWriter = request.app.state.writer
    reloader: ConfigReloader | None = request.app.state.reloader
    return ORJSONResponse(
        {
            "status": "OK",
            "version": __version__,
            "pid": os.getpid(),  # which worker answered, with --workers N
            "config_version": router.version,
            "endpoints": endpoints,
            "routes": {name: [d.name for d in split.destinations] for name, split in router.routes.items()},
            "last_reload": reloader.last if reloader is not None else None,
            "tracking": {"queued": writer.qsize(), "dropped": writer.dropped},
        }
    )


def _endpoint_health(ep: Endpoint) -> dict[str, Any]:
    health: dict[str, Any] = {"available": ep.available}
    if ep.unavailable:
        health["reason"] = ep.unavailable
    if len(ep.targets) > 1:  # `models:`: each model's own state
        health["models"] = [
            {"provider": t.model.provider, "name": t.model.name, "weight": t.model.weight,
             "available": t.provider is not None, **({"reason": t.unavailable} if t.unavailable else {})}
            for t in ep.targets
        ]  # fmt: skip
    return health


async def admin_reload(request: Request) -> Response:
    reloader: ConfigReloader | None = request.app.state.reloader
    if reloader is None:
        return ORJSONResponse(
            {
                "error": {
                    "message": "this gateway was not started from a config file",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "no_config_file",
                }
            },
            status_code=409,
        )
    outcome = await reloader.reload("admin")
    return ORJSONResponse(outcome.to_dict(), status_code=422 if outcome.result == "rejected" else 200)


async def metrics_endpoint(request: Request) -> Response:
    request.app.state.writer_mirror.update(request.app.state.writer.stats())
    return Response(generate_latest(metrics.scrape_registry()), media_type=CONTENT_TYPE_LATEST)


async def _mirror_writer_stats(app: Starlette) -> None:
    while True:
        await asyncio.sleep(1.0)
        app.state.writer_mirror.update(app.state.writer.stats())


async def openapi(request: Request) -> Response:
    return ORJSONResponse(openapi_schema())


def make_writer(config: GatewayConfig, sink: Sink | None) -> BatchingWriter:
    def on_drop(reason: str) -> None:
        metrics.TRACKING_DROPPED.labels(reason).inc()

    if sink is not None:
        return BatchingWriter(sink, on_drop=on_drop)
    try:
        from tracking import build_writer  # type: ignore[attr-defined]
    except ImportError:
        return BatchingWriter(NullSink(), on_drop=on_drop)
    return build_writer(config.tracking_settings(), on_drop=on_drop)  # type: ignore[no-any-return]


def build_app(config: GatewayConfig, *, sink: Sink | None = None, transport: str | None = None) -> GatewayApp:
    """The gateway as an ASGI app; `sink` overrides the configured tracking sink (tests)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = UpstreamClient(
            transport or config.gateway.transport, max_body_bytes=config.gateway.max_upstream_body_bytes
        )
        app.state.http_client = client
        app.state.limit_store = make_store(config.limits)
        app.state.router = EndpointRouter(config, client, app.state.limit_store)
        app.state.writer = make_writer(config, sink)
        metrics.CONFIG_INFO.labels(config.version).set(1)
        for name, reason in config.unavailable.items():
            logger.warning("endpoint %r is unavailable: %s", name, reason)
        await app.state.writer.start()
        app.state.writer_mirror = metrics.WriterMirror()
        mirror = asyncio.create_task(_mirror_writer_stats(app), name="writer-metrics")
        reloader = app.state.reloader = None
        if config.source is not None:
            reloader = app.state.reloader = ConfigReloader(app, config.source, strict=config.strict)
            await reloader.start(watch=config.gateway.reload.watch, debounce_ms=config.gateway.reload.debounce_ms)
        try:
            yield
        finally:
            mirror.cancel()
            metrics.flush()
            if reloader is not None:
                await reloader.aclose()
            await app.state.writer.aclose()
            await app.state.router.aclose()
            await app.state.limit_store.aclose()
            await client.aclose()

    routes: list[Any] = [
        *openai_routes.routes,
        *mlflow_routes.routes,
        *traces_routes.routes,
        Route("/health", health, methods=["GET"]),
        Route("/admin/reload", admin_reload, methods=["POST"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    app = GatewayApp(
        auth=config.auth,
        fast_routes={
            route.path: route.endpoint
            for route in (*openai_routes.routes, *mlflow_routes.routes)
            if route.methods == {"POST"}
        },
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            GatewayError: gateway_error_handler,
            HTTPException: http_error_handler,
            Exception: internal_error_handler,
        },
    )
    app.state.config = config
    app.state.max_body_bytes = config.gateway.max_body_bytes
    app.add_middleware(AuthMiddleware, auth=config.auth)
    return app
