"""JSON responses: wire shapes of records and the error body."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import orjson
from aiohttp import web

from streamkit.server.store.base import ConsumerRecord, Delivery, Message, StreamRecord, data_hash

M = TypeVar("M", bound=Message)

_DUMPS_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
_STR_KEYS_OPTIONS = orjson.OPT_UTC_Z


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response serialized with orjson (datetimes as RFC 3339, ``Z``)."""
    return web.Response(
        body=orjson.dumps(payload, option=_DUMPS_OPTIONS),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def with_data_hash(messages: Sequence[M]) -> Sequence[M]:
    """``messages``, each with its ``data_hash`` (added in place where the engine left it
    out), as the Sequin shape has it: the hash is computed for the reads that send it."""
    for message in messages:
        if "data_hash" not in message:
            message["data_hash"] = data_hash(message["data"])
    return messages


def messages_response(messages: Sequence[Message]) -> web.Response:
    """``{"data": messages}`` in the Sequin shape (`with_data_hash`)."""
    return json_response({"data": with_data_hash(messages)})


def deliveries_response(deliveries: list[Delivery]) -> web.Response:
    """``{"data": deliveries}`` as `json_response` would send it, each message with its
    ``data_hash`` (`with_data_hash`)."""
    with_data_hash([d["message"] for d in deliveries])
    return _str_keys_data_response(deliveries)


_OPTIONAL_MESSAGE_FIELDS = ("id", "headers", "encoding")


def delivery_columns_response(deliveries: list[Delivery]) -> web.Response:
    """``?deliveries=columns``: the deliveries as a list per field (see
    `~streamkit.protocol.wire.DELIVERY_COLUMNS`), sent as `deliveries_response` sends."""
    messages = [d["message"] for d in deliveries]
    columns: dict[str, Any] = {
        "stream_id": messages[0]["stream_id"] if messages else None,
        "ack_id": [d["ack_id"] for d in deliveries],
        "delivery_count": [d["delivery_count"] for d in deliveries],
        "seq": [m["seq"] for m in messages],
        "key": [m["key"] for m in messages],
        "data": [m["data"] for m in messages],
        "inserted_at": [m["inserted_at"] for m in messages],
    }
    for field in _OPTIONAL_MESSAGE_FIELDS:
        values = [m.get(field) for m in messages]
        if any(value is not None for value in values):
            columns[field] = values
    return _str_keys_data_response(columns)


def _str_keys_data_response(data: Any) -> web.Response:
    """``{"data": data}`` as `json_response` would send it, for ``data`` whose keys are all
    strings: orjson then skips its check for others (a fifth of the encoding time of a
    batch of small messages)."""
    return web.Response(
        body=orjson.dumps({"data": data}, option=_STR_KEYS_OPTIONS),
        content_type="application/json",
    )


class ErrorResponse(Exception):
    """Raised by handlers and middlewares; rendered as ``{"summary", "code", ...}``."""

    def __init__(
        self,
        status: int,
        summary: str,
        code: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(summary)
        self.status = status
        self.summary = summary
        self.code = code
        self.extra = extra or {}
        self.headers = headers

    def response(self) -> web.Response:
        """The error as a JSON response."""
        body = {"summary": self.summary, "code": self.code, **self.extra}
        return json_response(body, self.status, self.headers)


def not_found(kind: str) -> ErrorResponse:
    """The Sequin-compatible 404 for a stream or consumer ref that does not resolve."""
    return ErrorResponse(
        404, f"Not found: No `{kind}` found matching the provided ID or name", "not_found"
    )


def validation_failed(errors: dict[str, list[str]]) -> ErrorResponse:
    """422 with every problem keyed by field path."""
    return ErrorResponse(
        422, "Validation failed", "validation_failed", extra={"validation_errors": errors}
    )


def stream_json(s: StreamRecord) -> dict[str, Any]:
    """A stream object as Sequin shapes it, plus its options."""
    o = s.options
    return {
        "id": s.id,
        "name": s.name,
        "account_id": s.account_id,
        "one_message_per_key": o.one_message_per_key,
        "process_unmodified": o.process_unmodified,
        "max_storage_gb": o.max_storage_gb,
        "retain_up_to": o.retain_up_to,
        "retain_at_least": o.retain_at_least,
        "max_bytes": o.max_bytes,
        "max_age_ms": o.max_age_ms,
        "inserted_at": s.inserted_at,
        "updated_at": s.updated_at,
        "stats": {
            "message_count": s.stats.message_count,
            "consumer_count": s.stats.consumer_count,
            "storage_size": s.stats.storage_size,
        },
    }


def consumer_json(c: ConsumerRecord, max_waiting: int = 20) -> dict[str, Any]:
    """A consumer object as Sequin shapes it, plus ``ephemeral``/``inactive_threshold_ms``
    and, when known, ``stats``. ``max_waiting`` is the server's per-consumer long-poll cap."""
    body: dict[str, Any] = {
        "id": c.id,
        "name": c.name,
        "stream_id": c.stream_id,
        "account_id": c.account_id,
        "filter_key_pattern": c.filter_key_pattern,
        "kind": "pull",
        "ack_wait_ms": c.ack_wait_ms,
        "max_ack_pending": c.max_ack_pending,
        "max_deliver": c.max_deliver,
        "max_waiting": max_waiting,
        "status": "active",
        "ephemeral": c.ephemeral,
        "inactive_threshold_ms": c.inactive_threshold_ms,
        "inserted_at": c.inserted_at,
        "updated_at": c.updated_at,
    }
    if c.stats is not None:
        body["stats"] = {
            "pending": c.stats.pending,
            "in_flight": c.stats.in_flight,
            "dead": c.stats.dead,
            "skipped": c.stats.skipped,
        }
    return body
