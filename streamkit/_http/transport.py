"""HTTP transport: one aiohttp session, retries with backoff, endpoint failover, error mapping.

This is the only module that knows aiohttp's exceptions; `map_exceptions`
turns them into streamkit's once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as _ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from typing import Any

import aiohttp

from streamkit import errors
from streamkit._http.retry import Backoff, retriable
from streamkit._http.urls import server_url
from streamkit.models import dumps, loads

log = logging.getLogger(__name__)

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


@contextlib.contextmanager
def map_exceptions() -> Iterator[None]:
    """Translate aiohttp and asyncio failures into streamkit's `TransportError` family.

    A failure while the running task is being cancelled stays a cancellation
    (`asyncio.CancelledError`): aiohttp has turned one into a timeout or a
    connection error in some races, and every retry loop would then retry a
    request its caller had stopped (a Ctrl-C that does not stop the live tail).
    """
    try:
        yield
    except asyncio.TimeoutError as exc:  # aiohttp's ServerTimeoutError is one too
        _raise_if_cancelling(exc)
        raise errors.TimeoutError("timed out waiting for the server") from exc
    except (
        aiohttp.ClientConnectionError,
        aiohttp.ClientPayloadError,
        aiohttp.ClientResponseError,
    ) as exc:
        _raise_if_cancelling(exc)
        raise errors.ConnectError(str(exc) or type(exc).__name__) from exc


def _raise_if_cancelling(exc: BaseException) -> None:
    """Raise `asyncio.CancelledError` (from ``exc``) when the running task has been asked
    to cancel (``Task.cancelling``, Python 3.11 and later)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    if cancelling is not None and cancelling():
        raise asyncio.CancelledError from exc


def api_error(status: int, body: bytes, retry_after: str | None) -> errors.APIError:
    """Build the `APIError` for an error response, tolerating bodies that are not JSON."""
    summary, code, validation = f"HTTP {status}", None, None
    try:
        decoded = loads(body) if body else None
    except errors.DecodeError:
        decoded = None
    if isinstance(decoded, dict):
        summary = str(decoded.get("summary") or summary)
        code = decoded.get("code") if isinstance(decoded.get("code"), str) else None
        raw_validation = decoded.get("validation_errors")
        if isinstance(raw_validation, dict):
            validation = {
                str(k): [str(p) for p in v] if isinstance(v, list) else [str(v)]
                for k, v in raw_validation.items()
            }
    elif body:
        summary = f"{summary}: {body[:200].decode('utf-8', 'replace')}"
    delay: float | None = None
    if retry_after:
        with contextlib.suppress(ValueError):
            delay = max(0.0, float(retry_after))
    cls = errors.error_for_status(status)
    return cls(status, summary, code=code, validation_errors=validation, retry_after=delay)


class Transport:
    """Sends JSON requests to one of ``endpoints`` over a pooled aiohttp session.

    ``request(..., retry=True)`` is for idempotent calls: the failures
    `retriable` names are retried with jittered exponential backoff. A
    connection error moves every later request to the next endpoint, retried
    or not. ``ssl`` is passed to the
    connector: an `ssl.SSLContext` (say, trusting a private CA), ``False`` to
    skip certificate checks, or None for the default verification.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        api_key: str | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
        pool_size: int = 100,
        ssl: _ssl.SSLContext | bool | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one endpoint is required")
        self.endpoints = [server_url(url) for url in endpoints]
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._current = 0
        self._headers = dict(_JSON_HEADERS)
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._pool_size = pool_size
        self._ssl: _ssl.SSLContext | bool = True if ssl is None else ssl
        self._session: aiohttp.ClientSession | None = None
        self._streams: set[aiohttp.ClientResponse] = set()
        self._closed = False

    @property
    def base_url(self) -> str:
        """The endpoint requests go to now."""
        return self.endpoints[self._current]

    @property
    def closed(self) -> bool:
        """True once `close` was called."""
        return self._closed

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise errors.ClientClosed("the client is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, limit_per_host=self._pool_size, ssl=self._ssl
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                json_serialize=lambda v: dumps(v).decode(),
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | list[bytes] | None = None,
        params: Mapping[str, str | int] | None = None,
        retry: bool = False,
        timeout: float | None = None,
        retries: int | None = None,
        content_type: str | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one request and return its decoded JSON body; raise a streamkit error.

        The body is ``json`` encoded, or ``content``: JSON already encoded (or of
        ``content_type``), whole or as pieces sent one after another (with the
        body's length: not chunked). The headers of the response that answered
        are copied into ``response_headers`` (names in lower case), when given.
        """
        attempts = (self.retries if retries is None else retries) + 1 if retry else 1
        body = content if json is None else dumps(json)
        headers = {"Content-Type": content_type} if content_type else {}
        backoff = Backoff(self.backoff, self.max_backoff)
        while True:
            try:
                return await self._send(
                    method, path, body, params, timeout, headers, response_headers
                )
            except (errors.TransportError, errors.APIError) as exc:
                if backoff.failures + 1 >= attempts or not retriable(exc):
                    raise
                delay = backoff.delay(exc)
                log.debug("retrying %s %s in %.3fs after %r", method, path, delay, exc)
                await asyncio.sleep(delay)

    def _fail_over(self) -> None:
        """Move on to the next endpoint (after a connection error); no-op with one endpoint."""
        if len(self.endpoints) > 1:
            self._current = (self._current + 1) % len(self.endpoints)
            log.info("failing over to %s", self.base_url)

    async def _send(
        self,
        method: str,
        path: str,
        body: bytes | list[bytes] | None,
        params: Mapping[str, str | int] | None,
        timeout: float | None,
        headers: dict[str, str],
        response_headers: dict[str, str] | None,
    ) -> Any:
        session = self._get_session()
        data: bytes | AsyncIterator[bytes] | None = None
        if not isinstance(body, list):
            data = body
        elif len(body) == 1:
            data = body[0]
        else:
            data = _pieces(body)  # anew for each attempt
            headers = {**headers, "Content-Length": str(sum(map(len, body)))}
        client_timeout = aiohttp.ClientTimeout(
            total=timeout if timeout is not None else self.timeout,
            sock_connect=self.connect_timeout,
        )
        with self._failing_over(), map_exceptions():
            async with session.request(
                method,
                self.base_url + path,
                data=data,
                headers=headers or None,
                params=params,
                timeout=client_timeout,
            ) as response:
                raw = await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After")
                if response_headers is not None:
                    response_headers.clear()
                    response_headers.update((k.lower(), v) for k, v in response.headers.items())
        if status >= 400:
            raise api_error(status, raw, retry_after)
        if not raw:
            return None
        return loads(raw)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[StreamingBody]:
        """Open a response whose body is read as it arrives (an event stream).

        No retry and no overall timeout: getting the response headers is bounded
        by the client's ``timeout``, reading the body by the idle timeout given to
        `StreamingBody.chunks`. An error status raises its `APIError`; the
        connection is closed (not pooled) when the block exits.
        """
        session = self._get_session()
        client_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.connect_timeout, sock_read=None
        )

        async def open_response() -> aiohttp.ClientResponse:
            return await session.request(
                method,
                self.base_url + path,
                params=params,
                headers=headers,
                timeout=client_timeout,
            )

        with self._failing_over(), map_exceptions():
            response = await asyncio.wait_for(open_response(), self.timeout)
        self._streams.add(response)
        try:
            if response.status >= 400:
                with map_exceptions():
                    raw = await _within(response.read(), self.timeout)
                raise api_error(response.status, raw, response.headers.get("Retry-After"))
            yield StreamingBody(response)
        finally:
            self._streams.discard(response)
            response.close()

    @contextlib.contextmanager
    def _failing_over(self) -> Iterator[None]:
        try:
            yield
        except errors.ConnectError:
            self._fail_over()
            raise

    async def close(self) -> None:
        """Close the pool and end open streams. Further requests raise `ClientClosed`."""
        self._closed = True
        for response in list(self._streams):
            response.close()  # wakes their readers: streams end now, not at an idle timeout
        if self._session is not None:
            await self._session.close()
            self._session = None


class StreamingBody:
    """The body of a response opened with `Transport.stream`, read chunk by chunk."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status(self) -> int:
        """The HTTP status."""
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers (case-insensitive)."""
        return self._response.headers

    @property
    def content_type(self) -> str:
        """The media type of the body, without parameters."""
        return self._response.content_type

    async def chunks(self, idle_timeout: float | None = None) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive, until the server ends it.

        Raises streamkit's `TimeoutError` when nothing arrives for
        ``idle_timeout`` seconds (a stalled peer), `ConnectError` when the
        connection drops.
        """
        content = self._response.content
        while True:
            with map_exceptions():
                chunk = await _within(content.readany(), idle_timeout)
            if not chunk:
                return
            yield chunk


async def _within(awaitable: Awaitable[bytes], seconds: float | None) -> bytes:
    """Await ``awaitable``, raising `asyncio.TimeoutError` past ``seconds`` (None: no bound)."""
    if seconds is None:
        return await awaitable
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)  # pragma: no cover - Python 3.10


async def _pieces(body: list[bytes]) -> AsyncIterator[bytes]:
    """``body``'s pieces, for aiohttp to write one at a time."""
    for piece in body:
        yield piece
