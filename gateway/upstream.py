"""The one HTTP client every provider shares, with the two ways of sending through it.

`aiohttp` (the default): requests go straight to an aiohttp session. httpx's client layers
(request building, auth, redirects, cookies, response wrapping) cost over a third of the
gateway's CPU per call in the bench, and httpx's own pool slows as concurrency rises
(encode/httpx#3215). `httpx`: requests go through an httpx.AsyncClient; tests use it so
respx can mock upstreams. Both answer with the same small UpstreamResponse.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import aiohttp
import httpx

POOL_SIZE = 512


class UpstreamResponse(Protocol):
    status_code: int
    headers: Mapping[str, str]  # case-insensitive

    async def read(self) -> bytes: ...

    def iter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class _AiohttpResponse:
    __slots__ = ("_response", "status_code", "headers")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        finally:
            self._response.release()

    def iter_bytes(self) -> AsyncIterator[bytes]:
        return self._response.content.iter_any()

    async def aclose(self) -> None:
        # close(), not release(): a stream abandoned mid-body can't go back to the pool.
        if not self._response.closed:
            self._response.close()


class _HttpxResponse:
    __slots__ = ("_response", "status_code", "headers")

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status_code = response.status_code
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.aread()
        finally:
            await self._response.aclose()

    def iter_bytes(self) -> AsyncIterator[bytes]:
        return self._response.aiter_raw()

    async def aclose(self) -> None:
        await self._response.aclose()


class UpstreamClient:
    """Owned by the app's lifespan; built once, shared by every provider."""

    def __init__(self, transport: str = "aiohttp") -> None:
        self.transport = transport
        self._session: aiohttp.ClientSession | None = None
        self._httpx: httpx.AsyncClient | None = None
        if transport == "httpx":
            limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
            self._httpx = httpx.AsyncClient(limits=limits, trust_env=False)

    def _get_session(self) -> aiohttp.ClientSession:
        # Created on first use: an aiohttp session must be made inside the running loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=POOL_SIZE, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=True)
        return self._session

    async def send(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        connect_timeout: float,
        read_timeout: float,
        stream: bool,
    ) -> UpstreamResponse:
        """POST and return once the status line and headers are in; the caller reads or streams the body."""
        if self._httpx is not None:
            request = self._httpx.build_request(
                "POST",
                url,
                content=body,
                headers=headers,
                timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            )
            return _HttpxResponse(await self._httpx.send(request, stream=True))
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
        response = await self._get_session().post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        )
        return _AiohttpResponse(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._httpx is not None:
            await self._httpx.aclose()
