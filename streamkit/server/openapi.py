"""The OpenAPI 3.1 document of the HTTP API, served at ``GET /api/openapi.json``.

Schemas follow `streamkit.server.validation`: a request the document calls
valid passes validation (it may still meet a 404 or a name already taken), and
the limits are the validators' own constants. Unknown body fields are ignored
by the server, so request objects allow additional properties.

`build_spec` documents the operations of :data:`OPERATIONS` whose route
the app actually registered; ``tests/faults`` checks that every registered
route is documented and fuzzes each one against its schemas.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from streamkit.protocol import routes, split
from streamkit.protocol.keys import MAX_KEY_LENGTH, MAX_KEY_TOKENS, MAX_NAME_LENGTH
from streamkit.protocol.routes import Route
from streamkit.protocol.wire import (
    ACK_RUNS,
    ACKS_PARAM,
    DEFAULT_PAGE_LIMIT,
    DEFAULT_RECEIVE_BATCH,
    DELIVERIES_PARAM,
    DELIVERY_COLUMNS,
    EVENT_STREAM,
    JSON,
    MAX_ACK_IDS,
    MAX_BATCH,
)
from streamkit.server.validation import DEFAULT_MAX_WAIT_MS, MAX_DELAY_MS, MAX_ID_LENGTH, MAX_INT

Schema = dict[str, Any]

_TOKEN = r"[a-zA-Z0-9_-]+"
_FTOKEN = rf"(?:{_TOKEN}|\*)"
NAME_PATTERN = rf"^{_TOKEN}$"
KEY_PATTERN = rf"^{_TOKEN}(?:\.{_TOKEN}){{0,{MAX_KEY_TOKENS - 1}}}$"
FILTER_PATTERN = (
    rf"^(?:{_FTOKEN}(?:\.{_FTOKEN}){{0,{MAX_KEY_TOKENS - 1}}}"
    rf"|(?:{_FTOKEN}\.){{0,{MAX_KEY_TOKENS - 1}}}>)$"
)
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _int(minimum: int, maximum: int = MAX_INT, **extra: Any) -> Schema:
    return {"type": "integer", "minimum": minimum, "maximum": maximum, **extra}


_NAME: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_NAME_LENGTH,
    "pattern": NAME_PATTERN,
}
_FILTER: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_KEY_LENGTH,
    "pattern": FILTER_PATTERN,
}
_TIME: Schema = {"type": "string", "format": "date-time"}
_SEQ: Schema = {"type": "integer", "minimum": 1}
_TIME_PARAM: Schema = {
    "type": "string",
    "format": "date-time",
    # RFC 3339 with an offset. Stricter than the server (February stops at the 28th)
    # so that every string the pattern allows is a real time.
    "pattern": r"^[1-9][0-9]{3}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    r"[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$",
}
_ACK_IDS: Schema = {"type": "array", "items": {"type": "string"}, "maxItems": MAX_ACK_IDS}


SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["summary"],
        "properties": {
            "summary": {"type": "string"},
            "code": {"type": "string"},
            "validation_errors": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
            "param": {"type": "string"},
        },
    },
    "StreamCreate": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": _NAME,
            "one_message_per_key": _nullable({"type": "boolean"}),
            "process_unmodified": _nullable({"type": "boolean"}),
            "max_storage_gb": _nullable(_int(1)),
            "retain_up_to": _nullable(_int(1)),
            "retain_at_least": _nullable(_int(1)),
            "max_bytes": _nullable(_int(1)),
            "max_age_ms": _nullable(_int(1)),
        },
    },
    "StreamUpdate": {
        "type": "object",
        "description": "Retention limits to change; absent fields keep their value, "
        "null lifts a limit. name, one_message_per_key and process_unmodified cannot change.",
        "properties": {
            "max_storage_gb": _nullable(_int(1)),
            "retain_up_to": _nullable(_int(1)),
            "retain_at_least": _nullable(_int(1)),
            "max_bytes": _nullable(_int(1)),
            "max_age_ms": _nullable(_int(1)),
        },
    },
    "Stream": {
        "type": "object",
        "required": ["id", "name", "account_id", "inserted_at", "updated_at", "stats"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "account_id": {"type": "string"},
            "one_message_per_key": {"type": "boolean"},
            "process_unmodified": {"type": "boolean"},
            "max_storage_gb": _nullable({"type": "integer"}),
            "retain_up_to": _nullable({"type": "integer"}),
            "retain_at_least": _nullable({"type": "integer"}),
            "max_bytes": _nullable({"type": "integer"}),
            "max_age_ms": _nullable({"type": "integer"}),
            "inserted_at": _TIME,
            "updated_at": _TIME,
            "stats": {
                "type": "object",
                "required": ["message_count", "consumer_count", "storage_size"],
                "properties": {
                    "message_count": {"type": "integer", "minimum": 0},
                    "consumer_count": {"type": "integer", "minimum": 0},
                    "storage_size": {"type": "integer", "minimum": 0},
                },
            },
        },
    },
    "NewMessage": {
        "type": "object",
        "required": ["key", "data"],
        "properties": {
            "key": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_KEY_LENGTH,
                "pattern": KEY_PATTERN,
            },
            "data": {"type": "string"},
            "id": _nullable({"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}),
            "headers": _nullable({"type": "object", "additionalProperties": {"type": "string"}}),
            "encoding": {"enum": ["base64", "utf-8", None]},
        },
        "if": {"required": ["encoding"], "properties": {"encoding": {"const": "base64"}}},
        "then": {"properties": {"data": {"type": "string", "pattern": BASE64_PATTERN}}},
    },
    "PublishRequest": {
        "type": "object",
        "required": ["messages"],
        "properties": {
            "messages": {
                "type": "array",
                "items": _ref("NewMessage"),
                "minItems": 1,
                "maxItems": MAX_BATCH,
            }
        },
    },
    "PublishAck": {
        "type": "object",
        "required": ["id", "seq", "committed"],
        "properties": {
            "id": _nullable({"type": "string"}),
            "seq": _SEQ,
            "committed": _TIME,
        },
    },
    "PublishResponse": {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "object",
                "required": ["published"],
                "properties": {
                    "published": {"type": "integer", "minimum": 0, "maximum": MAX_BATCH},
                    "acks": {
                        "type": "array",
                        "items": _ref("PublishAck"),
                        "description": "One per message, in request order (without ?acks=runs)",
                    },
                    "ack_runs": {
                        "type": "array",
                        "description": (
                            "With ?acks=runs: the messages' acks in request order, as runs"
                            " of [first seq, count, commit time]: the run's messages got"
                            " first seq, first seq + 1, ..."
                        ),
                        "items": {
                            "type": "array",
                            "prefixItems": [_SEQ, {"type": "integer", "minimum": 1}, _TIME],
                            "minItems": 3,
                            "maxItems": 3,
                        },
                    },
                },
            }
        },
    },
    "Message": {
        "type": "object",
        "required": ["key", "stream_id", "data", "data_hash", "seq", "inserted_at", "updated_at"],
        "properties": {
            "key": {"type": "string"},
            "stream_id": {"type": "string"},
            "data": {"type": "string"},
            "data_hash": {"type": "string"},
            "seq": _SEQ,
            "inserted_at": _TIME,
            "updated_at": _TIME,
            "id": {"type": "string"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "encoding": {"enum": ["base64", "utf-8"]},
        },
    },
    "MessageList": {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"type": "array", "items": _ref("Message")}},
    },
    "ConsumerCreate": {
        "type": "object",
        "required": ["filter_key_pattern"],
        "properties": {
            "name": _NAME,
            "filter_key_pattern": _FILTER,
            "kind": {"enum": ["pull", None]},
            "ack_wait_ms": _nullable(_int(1, MAX_DELAY_MS, default=30_000)),
            "max_ack_pending": _nullable(_int(1, 1_000_000, default=10_000)),
            "max_deliver": _nullable(_int(1)),
            "start": {
                "anyOf": [
                    {"enum": ["all", "new", None]},
                    _int(0),
                    _TIME_PARAM,
                ],
                "description": "every message (default), only new ones, from a seq, or from"
                " the first message stored at or after an RFC 3339 time",
            },
            "ephemeral": _nullable({"type": "boolean"}),
            "inactive_threshold_ms": _nullable(_int(1, MAX_DELAY_MS)),
        },
        "description": "`name` may be omitted only for an ephemeral consumer; "
        "`inactive_threshold_ms` is only allowed for ephemeral consumers.",
        "if": {"required": ["ephemeral"], "properties": {"ephemeral": {"const": True}}},
        "then": {},
        "else": {
            "required": ["name"],
            "properties": {"inactive_threshold_ms": {"type": "null"}},
        },
    },
    "Consumer": {
        "type": "object",
        "required": [
            "id",
            "name",
            "stream_id",
            "account_id",
            "filter_key_pattern",
            "kind",
            "ack_wait_ms",
            "max_ack_pending",
            "max_deliver",
            "max_waiting",
            "status",
            "inserted_at",
            "updated_at",
        ],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "stream_id": {"type": "string"},
            "account_id": {"type": "string"},
            "filter_key_pattern": {"type": "string"},
            "kind": {"const": "pull"},
            "ack_wait_ms": {"type": "integer", "minimum": 1},
            "max_ack_pending": {"type": "integer", "minimum": 1},
            "max_deliver": _nullable({"type": "integer", "minimum": 1}),
            "max_waiting": {"type": "integer", "minimum": 1},
            "status": {"type": "string"},
            "ephemeral": {"type": "boolean"},
            "inactive_threshold_ms": _nullable({"type": "integer"}),
            "inserted_at": _TIME,
            "updated_at": _TIME,
            "stats": {
                "type": "object",
                "required": ["pending", "in_flight", "dead"],
                "properties": {
                    "pending": {"type": "integer", "minimum": 0},
                    "in_flight": {"type": "integer", "minimum": 0},
                    "dead": {"type": "integer", "minimum": 0},
                    "skipped": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "messages retention trimmed before this consumer acked them",
                    },
                },
            },
        },
    },
    "SeqsBody": {
        "type": "object",
        "properties": {
            "seqs": _nullable({"type": "array", "items": _int(1), "maxItems": MAX_ACK_IDS}),
        },
        "description": "the dead letters to act on; absent or null: every one",
    },
    "ResetBody": {
        "type": "object",
        "required": ["start"],
        "properties": {
            "start": {
                "anyOf": [{"enum": ["all", "new"]}, _int(0), _TIME_PARAM],
                "description": "where delivery starts over: every message, only new ones,"
                " a seq, or the first message stored at or after an RFC 3339 time",
            }
        },
    },
    "ReceiveBody": {
        "type": "object",
        "properties": {
            "batch_size": _int(1, MAX_BATCH),
            "wait_for": {"type": "integer", "minimum": 0, "maximum": MAX_INT},
        },
    },
    "Delivery": {
        "type": "object",
        "required": ["ack_id", "message", "delivery_count"],
        "properties": {
            "ack_id": {"type": "string"},
            "message": _ref("Message"),
            "delivery_count": {"type": "integer", "minimum": 1},
        },
    },
    "DeliveryList": {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "oneOf": [
                    {"type": "array", "items": _ref("Delivery")},
                    _ref("DeliveryColumns"),
                ]
            }
        },
    },
    "DeliveryColumns": {
        "type": "object",
        "description": (
            f"With ?{DELIVERIES_PARAM}={DELIVERY_COLUMNS}: the deliveries as one list per"
            " field, one entry per delivery in order; id, headers and encoding are there"
            " (null for a delivery without) only when a delivery of the batch has one"
        ),
        "required": ["stream_id", "ack_id", "delivery_count", "seq", "key", "data", "inserted_at"],
        "properties": {
            "stream_id": _nullable({"type": "string"}),
            "ack_id": {"type": "array", "items": {"type": "string"}},
            "delivery_count": {"type": "array", "items": {"type": "integer", "minimum": 1}},
            "seq": {"type": "array", "items": _SEQ},
            "key": {"type": "array", "items": {"type": "string"}},
            "data": {"type": "array", "items": {"type": "string"}},
            "inserted_at": {"type": "array", "items": _TIME},
            "id": {"type": "array", "items": _nullable({"type": "string"})},
            "headers": {
                "type": "array",
                "items": _nullable({"type": "object", "additionalProperties": {"type": "string"}}),
            },
            "encoding": {"type": "array", "items": {"enum": ["base64", "utf-8", None]}},
        },
    },
    "AckIds": {
        "type": "object",
        "required": ["ack_ids"],
        "properties": {"ack_ids": _ACK_IDS},
    },
    "NackBody": {
        "type": "object",
        "required": ["ack_ids"],
        "properties": {
            "ack_ids": _ACK_IDS,
            "delay_ms": _nullable(_int(0, MAX_DELAY_MS, default=0)),
        },
    },
    "Success": {
        "type": "object",
        "required": ["success"],
        "properties": {"success": {"const": True}},
    },
    "Deleted": {
        "type": "object",
        "required": ["id", "deleted"],
        "properties": {"id": {"type": "string"}, "deleted": {"const": True}},
    },
}


@dataclass(frozen=True)
class Operation:
    """One documented route: its `Route`, parameters, body and answers."""

    route: Route
    summary: str
    query: dict[str, Schema] = field(default_factory=dict)
    body: str | None = None
    body_required: bool = True
    ok_status: int = 200
    ok_schema: Schema | None = None
    ok_media: str = JSON
    errors: tuple[int, ...] = (400, 404)
    headers: dict[str, Schema] = field(default_factory=dict)
    other_bodies: dict[str, Schema] = field(default_factory=dict)
    """Media types the body may come as besides JSON, with their schemas."""
    ok_headers: dict[str, Schema] = field(default_factory=dict)
    """Headers of the OK answer, by name (a 204 has them and no content)."""

    @property
    def method(self) -> str:
        """The HTTP method, lower-case as OpenAPI writes it."""
        return self.route.method.lower()

    @property
    def path(self) -> str:
        """The path template."""
        return self.route.path

    @property
    def operation_id(self) -> str:
        """The OpenAPI ``operationId``: the route's name."""
        return self.route.name


_RATES: Schema = {"type": "array", "items": {"type": "number", "minimum": 0}}
_DASHBOARD_STREAM: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "message_count": {"type": "integer"},
        "consumer_count": {"type": "integer"},
        "storage_size": {"type": "integer"},
        "first_seq": _nullable(_SEQ),
        "last_seq": _nullable(_SEQ),
        "publish_rate": _RATES,
    },
}
_DASHBOARD: Schema = {
    "type": "object",
    "required": ["interval_ms", "total", "offset", "limit", "streams", "stream", "consumers"],
    "properties": {
        "interval_ms": {"type": "integer", "description": "Time between rate samples, in ms"},
        "total": {"type": "integer", "description": "Streams matching q (all pages)"},
        "offset": {"type": "integer"},
        "limit": {"type": "integer"},
        "streams": {"type": "array", "items": _DASHBOARD_STREAM},
        "stream": _nullable(_DASHBOARD_STREAM),
        "consumers": _nullable(
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "name": {"type": "string"},
                        "filter_key_pattern": {"type": "string"},
                        "ephemeral": {"type": "boolean"},
                        "max_deliver": _nullable({"type": "integer"}),
                        "lag": {"type": "integer", "description": "pending + in_flight"},
                        "pending": {"type": "integer"},
                        "in_flight": {"type": "integer"},
                        "dead": {"type": "integer"},
                        "redelivered": {"type": "integer"},
                        "ack_rate": _RATES,
                    },
                },
            }
        ),
    },
}

_WAIT: Schema = {
    "type": "integer",
    "minimum": 0,
    "default": 0,
    "description": "long-poll milliseconds; more than the server's cap "
    f"({DEFAULT_MAX_WAIT_MS} unless configured) waits the cap",
}
_LIMIT: Schema = _int(1, MAX_BATCH, default=DEFAULT_PAGE_LIMIT)
_FROM_TIME: Schema = {
    **_TIME_PARAM,
    "description": "RFC 3339 with an offset: start at the first message stored at or after it",
}


def _count(name: str) -> Schema:
    return {"type": "object", "required": [name], "properties": {name: _int(0)}}


def _data_list(item: str) -> Schema:
    return {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"type": "array", "items": _ref(item)}},
    }


_RECEIVE_QUERY: dict[str, Schema] = {
    "batch_size": _int(1, MAX_BATCH, default=DEFAULT_RECEIVE_BATCH),
    "wait_for": _WAIT,
    DELIVERIES_PARAM: {"enum": [DELIVERY_COLUMNS]},
}

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        routes.HEALTH,
        "Liveness (no auth)",
        errors=(),
        ok_schema={
            "type": "object",
            "required": ["ok"],
            "properties": {
                "ok": {"const": True},
                "status": {"enum": ["ok", "degraded"]},
                "reason": {"type": "string", "description": "why degraded (storage_full: ...)"},
            },
        },
    ),
    Operation(
        routes.PING,
        "Server identity",
        errors=(),
        ok_schema={
            "type": "object",
            "required": ["ok", "version"],
            "properties": {"ok": {"const": True}, "version": {"type": "string"}},
        },
    ),
    Operation(
        routes.OPENAPI,
        "This document",
        errors=(),
        ok_schema={"type": "object", "required": ["openapi", "paths"]},
    ),
    Operation(
        routes.METRICS,
        "Prometheus metrics",
        errors=(),
        ok_media="text/plain",
        ok_schema={"type": "string"},
    ),
    Operation(
        routes.CREATE_STREAM,
        "Create a stream",
        body="StreamCreate",
        ok_status=201,
        ok_schema=_ref("Stream"),
        errors=(400, 413, 422),
    ),
    Operation(
        routes.LIST_STREAMS,
        "List streams",
        errors=(),
        ok_schema=_data_list("Stream"),
    ),
    Operation(routes.GET_STREAM, "A stream with stats", ok_schema=_ref("Stream"), errors=(404,)),
    Operation(
        routes.UPDATE_STREAM,
        "Change a stream's retention limits",
        body="StreamUpdate",
        ok_schema=_ref("Stream"),
        errors=(400, 404, 413, 422),
    ),
    Operation(
        routes.DELETE_STREAM,
        "Delete a stream, its messages and consumers",
        ok_schema=_ref("Deleted"),
        errors=(404,),
    ),
    Operation(
        routes.PUBLISH,
        "Publish 1..1000 messages, all or nothing",
        query={ACKS_PARAM: {"enum": [ACK_RUNS]}},
        body="PublishRequest",
        ok_schema=_ref("PublishResponse"),
        errors=(400, 404, 413, 422),
        other_bodies={
            split.SPLIT_MESSAGES: {
                "type": "string",
                "contentMediaType": split.SPLIT_MESSAGES,
                "description": (
                    "A split body: the 4-byte big-endian length of a PublishRequest, that"
                    " PublishRequest (a message may carry data_size instead of data), then"
                    " those messages' data, back to back. Publish answers name it in"
                    " Accept-Post."
                ),
            }
        },
    ),
    Operation(
        routes.PUBLISH_OPTIONS,
        "What the messages route takes: its methods (Allow) and publish bodies (Accept-Post)",
        ok_status=204,
        ok_headers={
            "Allow": {"type": "string", "example": "GET, OPTIONS, POST"},
            "Accept-Post": {"type": "string", "example": split.ACCEPT_POST},
        },
    ),
    Operation(
        routes.READ_MESSAGES,
        "A page of stored messages",
        query={
            "limit": _LIMIT,
            "sort": {"enum": ["seq_asc", "seq_desc"], "default": "seq_asc"},
            "key_pattern": _FILTER,
            "after_seq": _int(0),
            "before_seq": _int(0),
            "wait_for": _WAIT,
            "from_time": _FROM_TIME,
        },
        ok_schema=_ref("MessageList"),
        errors=(400, 404, 429),
    ),
    Operation(
        routes.TAIL_MESSAGES,
        "Live tail as server-sent events",
        query={
            "last_event_id": _int(0),
            "from_seq": _int(0),
            "from_time": _FROM_TIME,
            "key_pattern": _FILTER,
            "event": {"enum": ["key", "message"], "default": "key"},
        },
        headers={"Last-Event-ID": {"type": "string", "pattern": r"^[0-9]{1,18}$"}},
        ok_media=EVENT_STREAM,
        ok_schema={"type": "string"},
        errors=(400, 404),
    ),
    Operation(
        routes.CREATE_CONSUMER,
        "Create a consumer",
        body="ConsumerCreate",
        ok_status=201,
        ok_schema=_ref("Consumer"),
        errors=(400, 404, 413, 422),
    ),
    Operation(
        routes.LIST_CONSUMERS,
        "A stream's consumers",
        ok_schema=_data_list("Consumer"),
        errors=(404,),
    ),
    Operation(
        routes.GET_CONSUMER, "A consumer with stats", ok_schema=_ref("Consumer"), errors=(404,)
    ),
    Operation(
        routes.DELETE_CONSUMER,
        "Delete a consumer",
        ok_schema=_ref("Deleted"),
        errors=(404,),
    ),
    Operation(
        routes.RECEIVE_GET,
        "Take deliveries (long-poll)",
        query=_RECEIVE_QUERY,
        ok_schema=_ref("DeliveryList"),
        errors=(400, 404, 429),
    ),
    Operation(
        routes.RECEIVE,
        "Take deliveries (long-poll); a JSON body overrides the query",
        query=_RECEIVE_QUERY,
        body="ReceiveBody",
        body_required=False,
        ok_schema=_ref("DeliveryList"),
        errors=(400, 404, 413, 422, 429),
    ),
    Operation(
        routes.ACK,
        "Acknowledge deliveries (unknown ids are ignored)",
        body="AckIds",
        ok_schema=_ref("Success"),
        errors=(400, 404, 413, 422),
    ),
    Operation(
        routes.NACK,
        "Redeliver after delay_ms",
        body="NackBody",
        ok_schema=_ref("Success"),
        errors=(400, 404, 413, 422),
    ),
    Operation(
        routes.EXTEND,
        "Reset ack deadlines",
        body="AckIds",
        ok_schema=_ref("Success"),
        errors=(400, 404, 413, 422),
    ),
    Operation(
        routes.DEAD_LETTERS,
        "Dead-lettered messages",
        query={"limit": _LIMIT, "after_seq": _int(0)},
        ok_schema=_ref("MessageList"),
        errors=(400, 404),
    ),
    Operation(
        routes.REDRIVE,
        "Deliver dead letters again, each with a fresh max_deliver count",
        body="SeqsBody",
        body_required=False,
        ok_schema=_count("redriven"),
        errors=(400, 404, 413, 422, 501),
    ),
    Operation(
        routes.DISCARD_DEAD,
        "Forget dead letters, as if they were acked",
        body="SeqsBody",
        body_required=False,
        ok_schema=_count("discarded"),
        errors=(400, 404, 413, 422),
    ),
    Operation(
        routes.RESET_CONSUMER,
        "Seek: drop the consumer's delivery state and deliver from start on",
        body="ResetBody",
        ok_schema=_ref("Consumer"),
        errors=(400, 404, 413, 422),
    ),
    Operation(
        routes.DASHBOARD,
        "One poll of the dashboard: a page of streams with publish rates, one stream's consumers",
        query={
            "q": {"type": "string", "maxLength": MAX_NAME_LENGTH},
            "offset": _int(0),
            "limit": _int(1, 200, default=50),
            "stream": _NAME,
        },
        ok_schema=_DASHBOARD,
        errors=(400, 404),
    ),
)

_ERROR_TEXT = {
    400: "Malformed JSON or query parameter",
    401: "Missing or invalid API key",
    404: "No such stream, consumer or route",
    413: "Request body, or a message's data, too large (validation_errors names it)",
    422: "Validation failed (validation_errors names each field)",
    429: "Too many long-polls waiting; retry after Retry-After seconds",
    501: "The server's engine cannot do this (code unsupported; the summary says why)",
    503: "Shutting down; retry after Retry-After seconds",
    507: "Storage full (code storage_full): nothing was stored; retry after Retry-After seconds",
}


def _path_params(path: str) -> list[Schema]:
    params = []
    for name in ("stream", "consumer"):
        if "{" + name + "}" in path:
            params.append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "description": f"the {name}'s name or id",
                    "schema": {"type": "string", "minLength": 1},
                }
            )
    return params


def _operation(op: Operation, auth: bool) -> Schema:
    params = _path_params(op.path)
    params += [
        {"name": n, "in": "query", "required": False, "schema": s} for n, s in op.query.items()
    ]
    params += [
        {"name": n, "in": "header", "required": False, "schema": s} for n, s in op.headers.items()
    ]
    error = {"$ref": "#/components/responses/Error"}
    ok: Schema = {"description": "OK"}
    if op.ok_status != 204:
        ok["content"] = {op.ok_media: {"schema": op.ok_schema or {}}}
    if op.ok_headers:
        ok["headers"] = {name: {"schema": schema} for name, schema in op.ok_headers.items()}
    responses: Schema = {str(op.ok_status): ok}
    secured = auth and op.path != "/health"
    writes = op.method not in ("get", "options") or op.path.endswith("/receive")
    extra = (*((401,) if secured else ()), *((507,) if writes else ()))
    for status in sorted({*op.errors, 503, *extra}):
        responses[str(status)] = {**error, "description": _ERROR_TEXT[status]}
    spec: Schema = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "parameters": params,
        "responses": responses,
    }
    if op.body is not None:
        spec["requestBody"] = {
            "required": op.body_required,
            "content": {
                JSON: {"schema": _ref(op.body)},
                **{media: {"schema": schema} for media, schema in op.other_bodies.items()},
            },
        }
    if op.path == "/health":
        spec["security"] = []
    return spec


def registered(router: web.UrlDispatcher) -> set[tuple[str, str]]:
    """(method, path) of every route ``router`` serves (HEAD twins of GET left out)."""
    out = set()
    for route in router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if path and route.method != "HEAD":
            out.add((route.method.lower(), str(path)))
    return out


def build_spec(routes: Iterable[tuple[str, str]], *, version: str, auth: bool) -> dict[str, Any]:
    """The document for the documented operations among ``routes`` ((method, path) pairs)."""
    wanted = set(routes)
    paths: dict[str, Schema] = {}
    for op in OPERATIONS:
        if (op.method, op.path) in wanted:
            paths.setdefault(op.path, {})[op.method] = _operation(op, auth)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "streamkit",
            "version": version,
            "description": "Sequin-compatible streams API served by streamkit.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": {JSON: {"schema": _ref("Error")}},
                }
            },
        },
    }
    if auth:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        doc["security"] = [{"bearer": []}]
    return doc


def undocumented(routes: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The routes among ``routes`` that :data:`OPERATIONS` does not describe."""
    documented = {(op.method, op.path) for op in OPERATIONS}
    return set(routes) - documented
