"""The one HTTP client every provider shares, with the two ways of sending through it.

`aiohttp` (the default): requests go straight to an aiohttp session. httpx's client layers
(request building, auth, redirects, cookies, response wrapping) cost over a third of the
gateway's CPU per call in the bench, and httpx's own pool slows as concurrency rises
(encode/httpx#3215). `httpx`: requests go through an httpx.AsyncClient; tests use it so
respx can mock upstreams. Both answer with the same small UpstreamResponse.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import aiohttp
import httpx

from gateway.errors import UpstreamUnavailable

POOL_SIZE = 512
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024


def _too_large(limit: int) -> UpstreamUnavailable:
    return UpstreamUnavailable(
        f"upstream answered more than {limit} bytes (gateway.max_upstream_body_bytes)", code="upstream_body_too_large"
    )


async def _bounded(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """Pass chunks on until `limit` bytes in all, then fail: memory stays bounded whatever the upstream sends."""
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        yield chunk


class UpstreamResponse(Protocol):
    status_code: int
    headers: Mapping[str, str]  # case-insensitive

    async def read(self) -> bytes: ...

    def iter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class _AiohttpResponse:
    __slots__ = ("_response", "status_code", "headers", "_limit")

    def __init__(self, response: aiohttp.ClientResponse, limit: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self._response = response
        self.status_code = response.status
        self.headers: Mapping[str, str] = response.headers
        self._limit = limit

    async def read(self) -> bytes:
        length = self._response.content_length
        if length is not None and length > self._limit:
            self._response.close()
            raise _too_large(self._limit)
        try:
            if length is not None and "Content-Encoding" not in self._response.headers:
                # Known size, under the bound, not compressed (a compressed body can inflate past it):
                # one read instead of a loop over chunks.
                return await self._response.read()
            return b"".join([chunk async for chunk in self.iter_bytes()])
        except BaseException:
            self._response.close()  # a body read only in part can't go back to the pool
            raise
        finally:
            self._response.release()

    def iter_bytes(self) -> AsyncIterator[bytes]:
        return _bounded(self._response.content.iter_any(), self._limit)

    async def aclose(self) -> None:
        # close(), not release(): a stream abandoned mid-body can't go back to the pool.
        if not self._response.closed:
            self._response.close()


class _HttpxResponse:
    __slots__ = ("_response", "status_code", "headers", "_limit", "_deadline")

    def __init__(
        self, response: httpx.Response, limit: int = DEFAULT_MAX_BODY_BYTES, deadline: float | None = None
    ) -> None:
        self._response = response
        self.status_code = response.status_code
        self.headers: Mapping[str, str] = response.headers
        self._limit = limit
        self._deadline = deadline  # loop time by which the whole call must be done (httpx has no total timeout)

    async def read(self) -> bytes:
        try:
            async with asyncio.timeout_at(self._deadline):
                return b"".join([chunk async for chunk in _bounded(self._response.aiter_bytes(), self._limit)])
        finally:
            await self._response.aclose()

    def iter_bytes(self) -> AsyncIterator[bytes]:
        return _bounded(self._response.aiter_raw(), self._limit)

    async def aclose(self) -> None:
        await self._response.aclose()


@functools.lru_cache(maxsize=256)
def _client_timeout(total: float | None, connect: float, read: float | None) -> aiohttp.ClientTimeout:
    # A handful of distinct values (one per endpoint setting): made once, not per call.
    return aiohttp.ClientTimeout(total=total, sock_connect=connect, sock_read=read)


class UpstreamClient:
    """Owned by the app's lifespan; built once, shared by every provider."""

    def __init__(self, transport: str = "aiohttp", *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.transport = transport
        self.max_body_bytes = max_body_bytes
        self._session: aiohttp.ClientSession | None = None
        self._httpx: httpx.AsyncClient | None = None
        if transport == "httpx":
            limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
            self._httpx = httpx.AsyncClient(limits=limits, trust_env=False)

    def _get_session(self) -> aiohttp.ClientSession:
        # Created on first use: an aiohttp session must be made inside the running loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=POOL_SIZE, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                auto_decompress=True,
                # One session serves every client: a cookie an upstream sets for one call must never
                # ride along on another client's call (and the jar's lookups cost time on every call).
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def send(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        connect_timeout: float,
        read_timeout: float | None,
        total_timeout: float | None = None,
        stream: bool,
    ) -> UpstreamResponse:
        """POST and return once the status line and headers are in; the caller reads or streams the body.

        read_timeout bounds each wait for bytes (None: none); total_timeout bounds the whole call,
        body read included."""
        if self._httpx is not None:
            request = self._httpx.build_request(
                "POST",
                url,
                content=body,
                headers=headers,
                timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            )
            deadline = None if total_timeout is None else asyncio.get_running_loop().time() + total_timeout
            async with asyncio.timeout_at(deadline):
                response = await self._httpx.send(request, stream=True)
            return _HttpxResponse(response, self.max_body_bytes, deadline)
        # aiohttp's own `total` covers connecting, sending and reading the body: no extra timer per call.
        timeout = _client_timeout(total_timeout, connect_timeout, read_timeout)
        response = await self._get_session().post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        )
        return _AiohttpResponse(response, self.max_body_bytes)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._httpx is not None:
            await self._httpx.aclose()
