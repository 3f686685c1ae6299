"""The route table of the streams HTTP API: every route, named once.

The server registers one handler per `Route` in `ROUTES`, its OpenAPI
document describes each by name, and the client builds its URLs from the
same objects; a test fails when the three disagree. A route's ``name`` is its
OpenAPI ``operationId``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class Route:
    """One method on one path template (``{stream}``, ``{consumer}`` segments)."""

    name: str
    method: str
    path: str

    def url(self, **segments: str) -> str:
        """The path with each ``{segment}`` filled in, percent-encoded."""
        return self.path.format(**{k: quote(v, safe="") for k, v in segments.items()})


_STREAM = "/api/streams/{stream}"
_CONSUMER = _STREAM + "/consumers/{consumer}"

HEALTH = Route("health", "GET", "/health")
METRICS = Route("metrics", "GET", "/metrics")
PING = Route("ping", "GET", "/api/ping")
OPENAPI = Route("openapi", "GET", "/api/openapi.json")
CREATE_STREAM = Route("createStream", "POST", "/api/streams")
LIST_STREAMS = Route("listStreams", "GET", "/api/streams")
GET_STREAM = Route("getStream", "GET", _STREAM)
UPDATE_STREAM = Route("updateStream", "PATCH", _STREAM)
DELETE_STREAM = Route("deleteStream", "DELETE", _STREAM)
PUBLISH = Route("publish", "POST", _STREAM + "/messages")
READ_MESSAGES = Route("readMessages", "GET", _STREAM + "/messages")
PUBLISH_OPTIONS = Route("publishOptions", "OPTIONS", _STREAM + "/messages")
"""What the messages route takes (``Allow``, ``Accept-Post``), asked before publishing."""
TAIL_MESSAGES = Route("tailMessages", "GET", _STREAM + "/messages/sse")
CREATE_CONSUMER = Route("createConsumer", "POST", _STREAM + "/consumers")
LIST_CONSUMERS = Route("listConsumers", "GET", _STREAM + "/consumers")
GET_CONSUMER = Route("getConsumer", "GET", _CONSUMER)
DELETE_CONSUMER = Route("deleteConsumer", "DELETE", _CONSUMER)
RECEIVE = Route("receivePost", "POST", _CONSUMER + "/receive")
RECEIVE_GET = Route("receive", "GET", _CONSUMER + "/receive")
"""Sequin's receive is a GET too; the client posts (a long-poll must not be cached)."""
ACK = Route("ack", "POST", _CONSUMER + "/ack")
NACK = Route("nack", "POST", _CONSUMER + "/nack")
EXTEND = Route("extend", "POST", _CONSUMER + "/extend")
DEAD_LETTERS = Route("deadLetters", "GET", _CONSUMER + "/dead")
REDRIVE = Route("redrive", "POST", _CONSUMER + "/dead/redrive")
DISCARD_DEAD = Route("discardDead", "POST", _CONSUMER + "/dead/discard")
RESET_CONSUMER = Route("resetConsumer", "POST", _CONSUMER + "/reset")
DASHBOARD = Route("dashboard", "GET", "/api/dashboard")
"""What one poll of the dashboard page (``/ui/``) shows: streams, consumers, rates."""

ROUTES: tuple[Route, ...] = (
    HEALTH,
    METRICS,
    PING,
    OPENAPI,
    CREATE_STREAM,
    LIST_STREAMS,
    GET_STREAM,
    UPDATE_STREAM,
    DELETE_STREAM,
    PUBLISH,
    READ_MESSAGES,
    PUBLISH_OPTIONS,
    TAIL_MESSAGES,
    CREATE_CONSUMER,
    LIST_CONSUMERS,
    GET_CONSUMER,
    DELETE_CONSUMER,
    RECEIVE_GET,
    RECEIVE,
    ACK,
    NACK,
    EXTEND,
    DEAD_LETTERS,
    REDRIVE,
    DISCARD_DEAD,
    RESET_CONSUMER,
    DASHBOARD,
)
"""Every route the server serves, in the order it registers them."""
