"""The HTTP API: plain aiohttp handlers over a `Store`.

Handlers parse, validate (``validation``), call the store and shape the reply
(``responses``). Middlewares wrap them, outermost first: metrics (request
count and latency per route template), errors (every failure becomes a JSON
body, never a traceback) and, when an API key is set, bearer auth.

``GET .../messages/sse`` is the live tail (server-sent events, see ``sse``);
``GET /metrics`` is the Prometheus exposition (see ``metrics``).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson
from aiohttp import web

from streamkit.protocol import routes, split
from streamkit.protocol.routes import Route
from streamkit.protocol.wire import MAX_MESSAGE_BYTES
from streamkit.server import dashboard, openapi, rates, sse, validation
from streamkit.server.limits import DEFAULT_MAX_LONG_POLLS, DEFAULT_MAX_WAITING, LongPolls
from streamkit.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from streamkit.server.metrics import ServerMetrics, refresh_store_gauges
from streamkit.server.responses import (
    ErrorResponse,
    consumer_json,
    deliveries_response,
    delivery_columns_response,
    json_response,
    messages_response,
    not_found,
    stream_json,
    validation_failed,
)
from streamkit.server.state import CLOSING, CONFIG, LONG_POLLS, METRICS, STORE
from streamkit.server.store.base import (
    Store,
    StoreConflict,
    StoreFull,
    StoreInvalid,
    StoreNotFound,
    StoreUnavailable,
    StoreUnsupported,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_SSE_HEARTBEAT = 15.0
"""Seconds between ``: keepalive`` comments on an idle live tail."""
STORAGE_FULL_RETRY_AFTER = 2
"""Seconds a write refused for lack of storage (507) is told to wait."""

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

try:
    VERSION = version("aiostreamkit")  # the distribution's name, not the package's
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    VERSION = "0+unknown"


def create_app(
    store: Store,
    *,
    api_key: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_wait_ms: int = validation.DEFAULT_MAX_WAIT_MS,
    max_waiting: int = DEFAULT_MAX_WAITING,
    max_long_polls: int = DEFAULT_MAX_LONG_POLLS,
    sse_heartbeat: float = DEFAULT_SSE_HEARTBEAT,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    dashboard_interval: float = rates.DEFAULT_INTERVAL,
    dashboard_window: int = rates.DEFAULT_WINDOW,
) -> web.Application:
    """Build the app. The store is opened on startup and closed on cleanup.

    ``api_key`` turns on bearer auth for every route but ``/health``;
    ``max_wait_ms`` caps ``wait_for`` on receive and reads; ``max_waiting``
    (per consumer) and ``max_long_polls`` (in all) cap the long-polls waiting
    at once, answering 429 past them; ``sse_heartbeat`` is the seconds between
    keepalive comments on an idle live tail; a message whose ``data`` is over
    ``max_message_bytes`` gets 413 and nothing of its batch is stored.
    The dashboard (``/ui/``) samples its rates every ``dashboard_interval``
    seconds and keeps ``dashboard_window`` of them.
    """
    if sse_heartbeat <= 0:
        raise ValueError("sse_heartbeat must be positive")
    if max_message_bytes < 1:
        raise ValueError("max_message_bytes must be at least 1")
    middlewares = [_metrics_middleware, _error_middleware]
    if api_key:
        middlewares.append(_auth_middleware(api_key))
    app = web.Application(middlewares=middlewares, client_max_size=max_body_bytes)
    app[STORE] = store
    app[METRICS] = ServerMetrics()
    app[CLOSING] = asyncio.Event()
    app[CONFIG] = {
        "max_wait_ms": max_wait_ms,
        "max_body_bytes": max_body_bytes,
        "max_message_bytes": max_message_bytes,
        "auth": bool(api_key),
        "sse_heartbeat_ms": max(1, round(sse_heartbeat * 1000)),
    }
    app[LONG_POLLS] = LongPolls(max_waiting, max_long_polls)

    async def store_context(_: web.Application) -> AsyncIterator[None]:
        await store.open()
        yield
        await store.close()

    async def on_shutdown(_: web.Application) -> None:
        app[CLOSING].set()  # live tails end after their current wait
        store.stop_waiting()  # long-polls return now instead of holding shutdown up

    app.cleanup_ctx.append(store_context)
    app.on_shutdown.append(on_shutdown)

    handlers = _handlers()
    for route in routes.ROUTES:
        app.router.add_route(route.method, route.path, handlers[route])
    dashboard.add_pages(app, interval=dashboard_interval, window=dashboard_window)
    return app


def _handlers() -> dict[Route, Handler]:
    """The handler of each route of the table (a route without one fails here)."""
    return {
        routes.HEALTH: health,
        routes.METRICS: metrics,
        routes.PING: ping,
        routes.OPENAPI: openapi_doc,
        routes.CREATE_STREAM: create_stream,
        routes.LIST_STREAMS: list_streams,
        routes.GET_STREAM: get_stream,
        routes.UPDATE_STREAM: update_stream,
        routes.DELETE_STREAM: delete_stream,
        routes.PUBLISH: publish,
        routes.READ_MESSAGES: read_messages,
        routes.PUBLISH_OPTIONS: publish_options,
        routes.TAIL_MESSAGES: sse.tail,
        routes.CREATE_CONSUMER: create_consumer,
        routes.LIST_CONSUMERS: list_consumers,
        routes.GET_CONSUMER: get_consumer,
        routes.DELETE_CONSUMER: delete_consumer,
        routes.RECEIVE_GET: receive,
        routes.RECEIVE: receive,
        routes.ACK: ack,
        routes.NACK: nack,
        routes.EXTEND: extend,
        routes.DEAD_LETTERS: dead_letters,
        routes.REDRIVE: redrive,
        routes.DISCARD_DEAD: discard_dead,
        routes.RESET_CONSUMER: reset_consumer,
        routes.DASHBOARD: dashboard.overview,
    }


# -- middlewares ----------------------------------------------------------------


def _route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return "unmatched" if resource is None else resource.canonical


@web.middleware
async def _metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by route template and status; time all but live tails."""
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away (nginx's convention)
        raise
    finally:
        server_metrics = request.app[METRICS]
        route = _route_label(request)
        method = request.method if request.method in _METHODS else "other"
        server_metrics.requests.inc(1, (method, route, str(status)))
        if route != routes.TAIL_MESSAGES.path:
            server_metrics.latency.observe(time.perf_counter() - start, (method, route))


@web.middleware
async def _error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ErrorResponse as exc:
        return exc.response()
    except StoreNotFound as exc:
        return not_found(exc.kind).response()
    except StoreConflict as exc:
        return validation_failed({exc.field: ["has already been taken"]}).response()
    except StoreInvalid as exc:
        return validation_failed(exc.errors).response()
    except StoreUnsupported as exc:
        return ErrorResponse(501, f"Not implemented: {exc}", "unsupported").response()
    except StoreFull as exc:
        return ErrorResponse(
            507,
            f"Insufficient storage: {exc}",
            "storage_full",
            headers={"Retry-After": str(STORAGE_FULL_RETRY_AFTER)},
        ).response()
    except StoreUnavailable as exc:
        return ErrorResponse(
            503,
            f"Service unavailable: {str(exc) or 'the server is shutting down'}",
            "unavailable",
            headers={"Retry-After": "1"},
        ).response()
    except validation.Invalid as exc:
        return validation_failed(exc.errors).response()
    except validation.TooLarge as exc:
        return ErrorResponse(
            413,
            f"Payload too large: a message's data is over {exc.limit} bytes; nothing was stored",
            "message_too_large",
            extra={"validation_errors": exc.errors},
        ).response()
    except validation.BadParam as exc:
        return ErrorResponse(400, str(exc), "bad_param", extra={"param": exc.param}).response()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[CONFIG]["max_body_bytes"]
        return ErrorResponse(
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
        return ErrorResponse(500, "Internal server error", "internal_error").response()


def _http_error(request: web.Request, exc: web.HTTPException) -> ErrorResponse:
    if exc.status == 404:
        summary = f"Not found: no route for {request.method} {request.path}"
        return ErrorResponse(404, summary, "not_found")
    if exc.status == 405:
        allow = exc.headers.get("Allow", "")
        return ErrorResponse(
            405,
            f"Method not allowed: {request.method} {request.path}",
            "method_not_allowed",
            headers={"Allow": allow},
        )
    return ErrorResponse(exc.status, exc.reason, "http_error")


def _auth_middleware(api_key: str) -> Any:
    expected = f"Bearer {api_key}".encode()

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != routes.HEALTH.path and not dashboard.is_page(request):
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise ErrorResponse(
                    401,
                    "Unauthorized: missing or invalid API key",
                    "unauthorized",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return await handler(request)

    return auth


# -- helpers ----------------------------------------------------------------------


async def _json_body(request: web.Request, *, optional: bool = False) -> Any:
    raw = await _body(request)
    if not raw.strip():
        if optional:
            return {}
        raise ErrorResponse(400, "Malformed request: a JSON body is required", "malformed_json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ErrorResponse(400, f"Malformed JSON body: {exc}", "malformed_json") from None


async def _body(request: web.Request) -> bytes:
    """The request's body, its chunks joined once (`_chunks`).

    ``request.read()`` grows a bytearray chunk by chunk and then copies it whole: at
    megabytes of large messages per request, two copies more of each on the loop.
    """
    return b"".join(await _chunks(request))


async def _chunks(request: web.Request) -> list[bytes]:
    """The request's body in the chunks it arrived in, with aiohttp's bound
    (`web.HTTPRequestEntityTooLarge`)."""
    limit = request.app[CONFIG]["max_body_bytes"]
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size >= limit:  # as aiohttp's own check
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
        chunks.append(chunk)
    return chunks


def _store(request: web.Request) -> Store:
    return request.app[STORE]


def _max_waiting(request: web.Request) -> int:
    return request.app[LONG_POLLS].max_waiting


def _max_wait(request: web.Request) -> int:
    value: int = request.app[CONFIG]["max_wait_ms"]
    return value


# -- handlers -----------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    """Liveness, no auth: 200 ``{"ok": true, "status": "ok"}``, or ``"status": "degraded"``
    with the ``reason`` while the store refuses writes (its disk is full, say)."""
    fault = _store(request).fault()
    if fault is None:
        return json_response({"ok": True, "status": "ok"})
    return json_response({"ok": True, "status": "degraded", "reason": fault})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; the consumer gauges are read from the store now."""
    server_metrics = request.app[METRICS]
    server_metrics.storage_degraded.set(0.0 if _store(request).fault() is None else 1.0)
    await refresh_store_gauges(_store(request), server_metrics)
    body = server_metrics.render().encode()
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


async def ping(request: web.Request) -> web.Response:
    """``{"ok": true, "version": ...}``."""
    return json_response({"ok": True, "version": VERSION})


async def openapi_doc(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of the routes this app serves."""
    config = request.app[CONFIG]
    doc = config.get("openapi")
    if doc is None:
        served = openapi.registered(request.app.router)
        doc = openapi.build_spec(served, version=VERSION, auth=config["auth"])
        config["openapi"] = doc
    return json_response(doc)


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


async def update_stream(request: web.Request) -> web.Response:
    """Change a stream's retention limits; the stream with its new options."""
    changes = validation.stream_update_body(await _json_body(request))
    record = await _store(request).update_stream(request.match_info["stream"], changes)
    return json_response(stream_json(record))


async def delete_stream(request: web.Request) -> web.Response:
    """``{"id": ..., "deleted": true}``."""
    stream_id = await _store(request).delete_stream(request.match_info["stream"])
    return json_response({"id": stream_id, "deleted": True})


async def publish(request: web.Request) -> web.Response:
    """Store 1..1000 messages atomically; acks in request order (``?acks=runs``: as runs)."""
    stream = request.match_info["stream"]
    limit: int = request.app[CONFIG]["max_message_bytes"]
    runs = validation.wants_ack_runs(request.query)
    messages = validation.publish_body(await _publish_body(request), limit)
    result = await _store(request).publish(stream, messages)
    request.app[METRICS].published.inc(result.published)
    request.app[METRICS].stream_published.inc(result.published, (stream,))
    if runs:
        data = {"published": result.published, "ack_runs": [list(run) for run in result.runs]}
    else:
        data = {"published": result.published, "acks": result.acks(messages)}
    return json_response({"data": data}, headers=_ACCEPT_POST)


_ACCEPT_POST = {"Accept-Post": split.ACCEPT_POST}
"""Tells a streamkit client that the publish route takes split bodies too."""


_MESSAGES_ALLOW = ", ".join(
    sorted(r.method for r in routes.ROUTES if r.path == routes.PUBLISH.path)
)
"""The methods of a stream's messages route, from the route table."""


async def publish_options(request: web.Request) -> web.Response:
    """``204`` with the methods of a stream's messages route (``Allow``) and the bodies
    its POST takes (``Accept-Post``): a client asks before its first split body. The
    same for every stream (the stream is not looked up)."""
    return web.Response(status=204, headers={"Allow": _MESSAGES_ALLOW, **_ACCEPT_POST})


async def _publish_body(request: web.Request) -> Any:
    """A publish request's body as JSON, whether it came as JSON or split (`split`)."""
    if request.content_type != split.SPLIT_MESSAGES:
        return await _json_body(request)
    try:
        return split.join(await _chunks(request))
    except split.SplitBodyError as exc:
        if exc.fields:
            raise validation.Invalid(exc.fields) from None
        raise ErrorResponse(400, f"Malformed split body: {exc}", "malformed_body") from None


async def read_messages(request: web.Request) -> web.Response:
    """A page of a stream's messages (``wait_for`` long-polls for the first match)."""
    query = validation.message_query(request.query, _max_wait(request))
    stream = request.match_info["stream"]
    with request.app[LONG_POLLS].hold(("stream", stream), query.wait_ms, per_key=False):
        found = await _store(request).read_messages(stream, query)
    return messages_response(found)


async def create_consumer(request: web.Request) -> web.Response:
    """Create a consumer (201, bare object)."""
    spec = validation.consumer_body(await _json_body(request))
    record = await _store(request).create_consumer(request.match_info["stream"], spec)
    return json_response(consumer_json(record, _max_waiting(request)), status=201)


async def list_consumers(request: web.Request) -> web.Response:
    """``{"data": [consumer, ...]}``."""
    records = await _store(request).list_consumers(request.match_info["stream"])
    max_waiting = _max_waiting(request)
    return json_response({"data": [consumer_json(r, max_waiting) for r in records]})


async def get_consumer(request: web.Request) -> web.Response:
    """One consumer with stats."""
    m = request.match_info
    record = await _store(request).get_consumer(m["stream"], m["consumer"])
    return json_response(consumer_json(record, _max_waiting(request)))


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
    columns = validation.wants_delivery_columns(request.query)
    m = request.match_info
    store = _store(request)
    key = ("consumer", m["stream"], m["consumer"])
    with request.app[LONG_POLLS].hold(key, wait_ms):
        deliveries = await store.receive(m["stream"], m["consumer"], batch_size, wait_ms)
    transport = request.transport
    if deliveries and (transport is None or transport.is_closing()):
        # The client gave up during the long-poll: hand the messages straight back.
        await store.release(m["stream"], m["consumer"], [d["ack_id"] for d in deliveries])
        deliveries = []
    server_metrics = request.app[METRICS]
    server_metrics.delivered.inc(len(deliveries))
    if again := sum(1 for d in deliveries if d["delivery_count"] > 1):
        server_metrics.redelivered.inc(again)
        server_metrics.consumer_redelivered.inc(again, (m["stream"], m["consumer"]))
    return delivery_columns_response(deliveries) if columns else deliveries_response(deliveries)


async def ack(request: web.Request) -> web.Response:
    """``{"success": true}``; unknown or stale ids are ignored."""
    ids = validation.ack_ids_body(await _json_body(request))
    m = request.match_info
    await _store(request).ack(m["stream"], m["consumer"], ids)
    request.app[METRICS].acked.inc(len(ids))
    request.app[METRICS].consumer_acked.inc(len(ids), (m["stream"], m["consumer"]))
    return json_response({"success": True})


async def nack(request: web.Request) -> web.Response:
    """Redeliver after ``delay_ms`` (default 0); ``reason`` is kept as the last error."""
    body = await _json_body(request)
    ids, delay_ms = validation.nack_body(body)
    reason = validation.nack_reason(body)
    m = request.match_info
    await _store(request).nack(m["stream"], m["consumer"], ids, delay_ms, reason)
    request.app[METRICS].nacked.inc(len(ids))
    return json_response({"success": True})


async def extend(request: web.Request) -> web.Response:
    """Reset the ack deadline of in-flight deliveries."""
    ids = validation.ack_ids_body(await _json_body(request))
    m = request.match_info
    await _store(request).extend(m["stream"], m["consumer"], ids)
    return json_response({"success": True})


async def dead_letters(request: web.Request) -> web.Response:
    """``{"data": [message, ...]}``: what this consumer dead-lettered, past ``after_seq``;
    each message also has its ``delivery_count`` (and ``last_error`` if known)."""
    limit = validation.limit_param(request.query)
    after = validation.int_param(request.query, "after_seq", 0, minimum=0)
    m = request.match_info
    found = await _store(request).dead_letters(m["stream"], m["consumer"], limit, after)
    return messages_response(found)


async def redrive(request: web.Request) -> web.Response:
    """``{"seqs": [...]}`` (or none: all) -> ``{"redriven": n}``: delivered again."""
    seqs = validation.seqs_body(await _json_body(request, optional=True))
    m = request.match_info
    count = await _store(request).redrive(m["stream"], m["consumer"], seqs)
    return json_response({"redriven": count})


async def discard_dead(request: web.Request) -> web.Response:
    """``{"seqs": [...]}`` (or none: all) -> ``{"discarded": n}``: forgotten, as if acked."""
    seqs = validation.seqs_body(await _json_body(request, optional=True))
    m = request.match_info
    count = await _store(request).discard_dead(m["stream"], m["consumer"], seqs)
    return json_response({"discarded": count})


async def reset_consumer(request: web.Request) -> web.Response:
    """``{"start": "all"|"new"|seq|RFC 3339}`` -> the consumer, delivering from there on."""
    start = validation.reset_body(await _json_body(request))
    m = request.match_info
    store = _store(request)
    await store.reset_consumer(m["stream"], m["consumer"], start)
    record = await store.get_consumer(m["stream"], m["consumer"])
    return json_response(consumer_json(record, _max_waiting(request)))
