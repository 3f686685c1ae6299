"""The HTTP API: plain aiohttp handlers over a :class:`~streamkit.server.store.base.Store`.

Handlers parse, validate (``validation``), call the store and shape the reply
(``responses``). Two middlewares wrap them: errors (every failure becomes a
JSON body, never a traceback) and, when an API key is set, bearer auth.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson
from aiohttp import web

from streamkit.server import validation
from streamkit.server.responses import (
    ApiError,
    consumer_json,
    json_response,
    not_found,
    stream_json,
    validation_failed,
)
from streamkit.server.store.base import Store, StoreConflict, StoreNotFound, StoreUnavailable

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024

STORE = web.AppKey("store", Store)
_CONFIG = web.AppKey("config", dict)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

try:
    VERSION = version("streamkit")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    VERSION = "0+unknown"


def create_app(
    store: Store,
    *,
    api_key: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_wait_ms: int = validation.DEFAULT_MAX_WAIT_MS,
) -> web.Application:
    """Build the app. The store is opened on startup and closed on cleanup.

    ``api_key`` turns on bearer auth for every route but ``/health``;
    ``max_wait_ms`` caps ``wait_for`` on receive and reads.
    """
    middlewares = [_error_middleware]
    if api_key:
        middlewares.append(_auth_middleware(api_key))
    app = web.Application(middlewares=middlewares, client_max_size=max_body_bytes)
    app[STORE] = store
    app[_CONFIG] = {"max_wait_ms": max_wait_ms, "max_body_bytes": max_body_bytes}

    async def store_context(_: web.Application) -> AsyncIterator[None]:
        await store.open()
        yield
        await store.close()

    async def on_shutdown(_: web.Application) -> None:
        store.stop_waiting()  # long-polls return now instead of holding shutdown up

    app.cleanup_ctx.append(store_context)
    app.on_shutdown.append(on_shutdown)

    stream = "/api/streams/{stream}"
    consumer = stream + "/consumers/{consumer}"
    app.router.add_get("/health", health)
    app.router.add_get("/api/ping", ping)
    app.router.add_post("/api/streams", create_stream)
    app.router.add_get("/api/streams", list_streams)
    app.router.add_get(stream, get_stream)
    app.router.add_delete(stream, delete_stream)
    app.router.add_post(stream + "/messages", publish)
    app.router.add_get(stream + "/messages", read_messages)
    app.router.add_post(stream + "/consumers", create_consumer)
    app.router.add_get(stream + "/consumers", list_consumers)
    app.router.add_get(consumer, get_consumer)
    app.router.add_delete(consumer, delete_consumer)
    app.router.add_get(consumer + "/receive", receive)
    app.router.add_post(consumer + "/receive", receive)
    app.router.add_post(consumer + "/ack", ack)
    app.router.add_post(consumer + "/nack", nack)
    app.router.add_post(consumer + "/extend", extend)
    app.router.add_get(consumer + "/dead", dead_letters)
    return app


# -- middlewares ----------------------------------------------------------------


@web.middleware
async def _error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except StoreNotFound as exc:
        return not_found(exc.kind).response()
    except StoreConflict as exc:
        return validation_failed({exc.field: ["has already been taken"]}).response()
    except StoreUnavailable:
        return ApiError(
            503,
            "Service unavailable: the server is shutting down",
            "unavailable",
            headers={"Retry-After": "1"},
        ).response()
    except validation.Invalid as exc:
        return validation_failed(exc.errors).response()
    except validation.BadParam as exc:
        return ApiError(400, str(exc), "bad_param", extra={"param": exc.param}).response()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[_CONFIG]["max_body_bytes"]
        return ApiError(
            413,
            f"Payload too large: the request body exceeds {limit} bytes",
            "payload_too_large",
        ).response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(request, exc).response()
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return ApiError(500, "Internal server error", "internal_error").response()


def _http_error(request: web.Request, exc: web.HTTPException) -> ApiError:
    if exc.status == 404:
        summary = f"Not found: no route for {request.method} {request.path}"
        return ApiError(404, summary, "not_found")
    if exc.status == 405:
        allow = exc.headers.get("Allow", "")
        return ApiError(
            405,
            f"Method not allowed: {request.method} {request.path}",
            "method_not_allowed",
            headers={"Allow": allow},
        )
    return ApiError(exc.status, exc.reason, "http_error")


def _auth_middleware(api_key: str) -> Any:
    expected = f"Bearer {api_key}".encode()

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != "/health":
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise ApiError(
                    401,
                    "Unauthorized: missing or invalid API key",
                    "unauthorized",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return await handler(request)

    return auth


# -- helpers ----------------------------------------------------------------------


async def _json_body(request: web.Request, *, optional: bool = False) -> Any:
    raw = await request.read()
    if not raw.strip():
        if optional:
            return {}
        raise ApiError(400, "Malformed request: a JSON body is required", "malformed_json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"Malformed JSON body: {exc}", "malformed_json") from None


def _store(request: web.Request) -> Store:
    return request.app[STORE]


def _max_wait(request: web.Request) -> int:
    value: int = request.app[_CONFIG]["max_wait_ms"]
    return value


# -- handlers -----------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    """Liveness: no auth, no store access."""
    return json_response({"ok": True})


async def ping(request: web.Request) -> web.Response:
    """``{"ok": true, "version": ...}``."""
    return json_response({"ok": True, "version": VERSION})


async def create_stream(request: web.Request) -> web.Response:
    """Create a stream (201, bare object)."""
    name, options = validation.stream_body(await _json_body(request))
    record = await _store(request).create_stream(name, options)
    return json_response(stream_json(record), status=201)


async def list_streams(request: web.Request) -> web.Response:
    """``{"data": [stream, ...]}``."""
    records = await _store(request).list_streams()
    return json_response({"data": [stream_json(r) for r in records]})


async def get_stream(request: web.Request) -> web.Response:
    """One stream with stats."""
    record = await _store(request).get_stream(request.match_info["stream"])
    return json_response(stream_json(record))


async def delete_stream(request: web.Request) -> web.Response:
    """``{"id": ..., "deleted": true}``."""
    stream_id = await _store(request).delete_stream(request.match_info["stream"])
    return json_response({"id": stream_id, "deleted": True})


async def publish(request: web.Request) -> web.Response:
    """Store 1..1000 messages atomically; acks in request order."""
    stream = request.match_info["stream"]
    messages = validation.publish_body(await _json_body(request))
    result = await _store(request).publish(stream, messages)
    return json_response({"data": {"published": result.published, "acks": result.acks}})


async def read_messages(request: web.Request) -> web.Response:
    """A page of a stream's messages (``wait_for`` long-polls for the first match)."""
    query = validation.message_query(request.query, _max_wait(request))
    found = await _store(request).read_messages(request.match_info["stream"], query)
    return json_response({"data": found})


async def create_consumer(request: web.Request) -> web.Response:
    """Create a consumer (201, bare object)."""
    spec = validation.consumer_body(await _json_body(request))
    record = await _store(request).create_consumer(request.match_info["stream"], spec)
    return json_response(consumer_json(record), status=201)


async def list_consumers(request: web.Request) -> web.Response:
    """``{"data": [consumer, ...]}``."""
    records = await _store(request).list_consumers(request.match_info["stream"])
    return json_response({"data": [consumer_json(r) for r in records]})


async def get_consumer(request: web.Request) -> web.Response:
    """One consumer with stats."""
    m = request.match_info
    record = await _store(request).get_consumer(m["stream"], m["consumer"])
    return json_response(consumer_json(record))


async def delete_consumer(request: web.Request) -> web.Response:
    """``{"id": ..., "deleted": true}``."""
    m = request.match_info
    consumer_id = await _store(request).delete_consumer(m["stream"], m["consumer"])
    return json_response({"id": consumer_id, "deleted": True})


async def receive(request: web.Request) -> web.Response:
    """Deliver up to ``batch_size`` messages, long-polling up to ``wait_for`` ms.

    Parameters come from the query string, or from a JSON body on POST.
    """
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST":
        body = await _json_body(request, optional=True)
        if not isinstance(body, dict):
            raise validation.Invalid({"body": ["must be a JSON object"]})
        params.update({k: body[k] for k in ("batch_size", "wait_for") if k in body})
    batch_size, wait_ms = validation.receive_params(params, _max_wait(request))
    m = request.match_info
    store = _store(request)
    deliveries = await store.receive(m["stream"], m["consumer"], batch_size, wait_ms)
    transport = request.transport
    if deliveries and (transport is None or transport.is_closing()):
        # The client gave up during the long-poll: hand the messages straight back.
        await store.nack(m["stream"], m["consumer"], [d["ack_id"] for d in deliveries])
        return json_response({"data": []})
    return json_response({"data": deliveries})


async def ack(request: web.Request) -> web.Response:
    """``{"success": true}``; unknown or stale ids are ignored."""
    ids = validation.ack_ids_body(await _json_body(request))
    m = request.match_info
    await _store(request).ack(m["stream"], m["consumer"], ids)
    return json_response({"success": True})


async def nack(request: web.Request) -> web.Response:
    """Redeliver after ``delay_ms`` (default 0)."""
    ids, delay_ms = validation.nack_body(await _json_body(request))
    m = request.match_info
    await _store(request).nack(m["stream"], m["consumer"], ids, delay_ms)
    return json_response({"success": True})


async def extend(request: web.Request) -> web.Response:
    """Reset the ack deadline of in-flight deliveries."""
    ids = validation.ack_ids_body(await _json_body(request))
    m = request.match_info
    await _store(request).extend(m["stream"], m["consumer"], ids)
    return json_response({"success": True})


async def dead_letters(request: web.Request) -> web.Response:
    """``{"data": [message, ...]}``: what this consumer dead-lettered."""
    limit = validation.limit_param(request.query)
    m = request.match_info
    found = await _store(request).dead_letters(m["stream"], m["consumer"], limit)
    return json_response({"data": found})
