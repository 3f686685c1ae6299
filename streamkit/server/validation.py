"""Pure validators for request bodies and query parameters.

Bodies that parse but are wrong raise `Invalid` (422, every problem
keyed by field path, e.g. ``messages[3].key``); bad query parameters raise
`BadParam` (400, naming the parameter). Unknown body fields are ignored.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from streamkit.protocol.keys import filter_problem, key_problem, name_problem
from streamkit.protocol.wire import (
    ACK_RUNS,
    ACKS_PARAM,
    DEFAULT_PAGE_LIMIT,
    DEFAULT_RECEIVE_BATCH,
    DELIVERIES_PARAM,
    DELIVERY_COLUMNS,
    MAX_ACK_IDS,
    MAX_BATCH,
    MAX_MESSAGE_BYTES,
    MAX_REASON_CHARS,
    StartPosition,
    parse_time,
)
from streamkit.server.store.base import (
    RETENTION_FIELDS,
    ConsumerSpec,
    MessageQuery,
    NewMessage,
    StreamChanges,
    StreamOptions,
)

MAX_ID_LENGTH = 255
MAX_DELAY_MS = 7 * 24 * 3600 * 1000
DEFAULT_MAX_WAIT_MS = 60_000
MAX_INT = 2**62
"""Upper bound for every integer we accept: fits SQLite's signed 64-bit with room to add."""
# Fast path for the common case; anything it rejects gets key_problem's message.
_KEY = re.compile(r"[a-zA-Z0-9_-]+(?:\.[a-zA-Z0-9_-]+){0,15}")
_VALID_KEYS: set[str] = set()
"""Keys already found valid: a set lookup costs a tenth of the regular expression."""
_MAX_VALID_KEYS = 10_000
"""Keys remembered at most (about 3 MB at the longest keys); then it starts over."""
_DATA_TYPES = (str, memoryview)
"""What a message's data may be: text, or large ASCII text from a split body (`NewMessage`)."""


class Invalid(Exception):
    """The body is well-formed JSON but breaks the rules (422)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("Validation failed")
        self.errors = errors


class TooLarge(Exception):
    """A message's ``data`` is over the size limit (413), keyed by field path."""

    def __init__(self, errors: dict[str, list[str]], limit: int) -> None:
        super().__init__("Payload too large")
        self.errors = errors
        self.limit = limit


class BadParam(Exception):
    """A query parameter is malformed or out of range (400)."""

    def __init__(self, param: str, problem: str) -> None:
        super().__init__(f"Invalid parameter `{param}`: {problem}")
        self.param = param


class _Errors:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, path: str, problem: str) -> None:
        self.errors.setdefault(path, []).append(problem)

    def raise_if_any(self) -> None:
        if self.errors:
            raise Invalid(self.errors)


def _object(body: object) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise Invalid({"body": ["must be a JSON object"]})
    return body


def _int(
    errors: _Errors,
    body: Mapping[str, Any],
    field: str,
    default: int | None,
    *,
    minimum: int,
    maximum: int | None = None,
    nullable: bool = False,
) -> int | None:
    value = body.get(field, default)
    if value is None:
        if nullable or default is None:
            return None
        value = default
    if type(value) is not int:
        errors.add(field, "must be an integer")
        return default
    top = MAX_INT if maximum is None else maximum
    if value < minimum or value > top:
        errors.add(field, f"must be between {minimum} and {top}")
        return default
    return value


def _bool(errors: _Errors, body: Mapping[str, Any], field: str, default: bool) -> bool:
    value = body.get(field, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        errors.add(field, "must be a boolean")
        return default
    return value


# -- bodies -------------------------------------------------------------------


def stream_body(body: object) -> tuple[str, StreamOptions]:
    """``POST /api/streams`` -> (name, options)."""
    obj = _object(body)
    errors = _Errors()
    name = obj.get("name")
    problem = name_problem(name)
    if problem:
        errors.add("name", problem)
    options = StreamOptions(
        one_message_per_key=_bool(errors, obj, "one_message_per_key", False),
        process_unmodified=_bool(errors, obj, "process_unmodified", False),
        max_storage_gb=_int(errors, obj, "max_storage_gb", None, minimum=1, nullable=True),
        retain_up_to=_int(errors, obj, "retain_up_to", None, minimum=1, nullable=True),
        retain_at_least=_int(errors, obj, "retain_at_least", None, minimum=1, nullable=True),
        max_bytes=_int(errors, obj, "max_bytes", None, minimum=1, nullable=True),
        max_age_ms=_int(errors, obj, "max_age_ms", None, minimum=1, nullable=True),
    )
    errors.raise_if_any()
    assert isinstance(name, str)
    return name, options


_FIXED_FIELDS = ("name", "one_message_per_key", "process_unmodified")


def stream_update_body(body: object) -> StreamChanges:
    """``PATCH /api/streams/{s}`` -> the retention fields to change (``None`` lifts a limit).

    Fields are validated as on create; absent ones keep their value (an empty body
    changes nothing). The name and the compaction options cannot change on an
    existing stream.
    """
    obj = _object(body)
    errors = _Errors()
    for field in _FIXED_FIELDS:
        if field in obj:
            errors.add(field, "cannot be changed on an existing stream")
    changes = {
        field: _int(errors, obj, field, None, minimum=1, nullable=True)
        for field in RETENTION_FIELDS
        if field in obj
    }
    errors.raise_if_any()
    return changes


def consumer_body(body: object) -> ConsumerSpec:
    """``POST .../consumers`` -> a consumer spec (ephemeral ones may omit ``name``)."""
    obj = _object(body)
    errors = _Errors()
    ephemeral = _bool(errors, obj, "ephemeral", False)
    name = obj.get("name")
    if name is None and ephemeral:
        name = f"ephemeral-{secrets.token_hex(8)}"
    problem = name_problem(name)
    if problem:
        errors.add("name", problem)
    pattern = obj.get("filter_key_pattern")
    problem = filter_problem(pattern)
    if problem:
        errors.add("filter_key_pattern", problem)
    kind = obj.get("kind", "pull")
    if kind not in ("pull", None):
        errors.add("kind", "must be 'pull'")
    ack_wait_ms = _int(errors, obj, "ack_wait_ms", 30_000, minimum=1, maximum=MAX_DELAY_MS)
    max_ack_pending = _int(errors, obj, "max_ack_pending", 10_000, minimum=1, maximum=1_000_000)
    max_deliver = _int(errors, obj, "max_deliver", None, minimum=1, nullable=True)
    start = start_position(errors, obj)
    threshold = _int(
        errors, obj, "inactive_threshold_ms", None, minimum=1, maximum=MAX_DELAY_MS, nullable=True
    )
    if threshold is not None and not ephemeral:
        errors.add("inactive_threshold_ms", "is only allowed for ephemeral consumers")
    errors.raise_if_any()
    assert isinstance(name, str) and isinstance(pattern, str)
    assert ack_wait_ms is not None and max_ack_pending is not None
    return ConsumerSpec(
        name=name,
        filter_key_pattern=pattern,
        ack_wait_ms=ack_wait_ms,
        max_ack_pending=max_ack_pending,
        max_deliver=max_deliver,
        start=start,
        ephemeral=ephemeral,
        inactive_threshold_ms=threshold,
    )


START_PROBLEM = "must be 'all', 'new', a seq (integer >= 0) or an RFC 3339 timestamp"


def start_position(errors: _Errors, body: Mapping[str, Any]) -> StartPosition:
    """``start``: "all" (also when absent), "new", a seq, or an RFC 3339 timestamp."""
    start = body.get("start", "all")
    if start is None or start in ("all", "new"):
        return start or "all"
    if type(start) is int and 0 <= start <= MAX_INT:
        return start
    if isinstance(start, str) and (when := parse_time(start)) is not None:
        return when
    errors.add("start", START_PROBLEM)
    return "all"


def reset_body(body: object) -> StartPosition:
    """``POST .../consumers/{c}/reset`` -> where the consumer starts over (``start`` required)."""
    obj = _object(body)
    if obj.get("start") is None:
        raise Invalid({"start": ["is required"]})
    errors = _Errors()
    start = start_position(errors, obj)
    errors.raise_if_any()
    return start


def seqs_body(body: object) -> list[int] | None:
    """``{"seqs": [...]}`` (or ``{}``/``{"seqs": null}``: every one) -> the seqs, or None."""
    obj = _object(body)
    seqs = obj.get("seqs")
    if seqs is None:
        return None
    if not isinstance(seqs, list) or not all(type(s) is int and 0 < s <= MAX_INT for s in seqs):
        raise Invalid({"seqs": ["must be a list of seqs (integers >= 1)"]})
    if len(seqs) > MAX_ACK_IDS:
        raise Invalid({"seqs": [f"should have at most {MAX_ACK_IDS} item(s)"]})
    return seqs


def publish_body(body: object, max_message_bytes: int = MAX_MESSAGE_BYTES) -> list[NewMessage]:
    """``POST .../messages`` -> the messages, all valid, else `Invalid` or `TooLarge`."""
    obj = _object(body)
    messages = obj.get("messages")
    if messages is None:
        raise Invalid({"messages": ["is required"]})
    if not isinstance(messages, list):
        raise Invalid({"messages": ["must be a list"]})
    if not messages:
        raise Invalid({"messages": ["should have at least 1 item(s)"]})
    if len(messages) > MAX_BATCH:
        raise Invalid({"messages": [f"should have at most {MAX_BATCH} item(s)"]})
    known, key_ok = _VALID_KEYS, _KEY.fullmatch
    errors: _Errors | None = None
    for i, m in enumerate(messages):
        # Fast path: what clients send (key, data, maybe an id, plain-text headers).
        # Whatever it does not accept outright is checked, and explained, below.
        if type(m) is dict:
            key = m.get("key")
            msg_id = m.get("id")
            headers = m.get("headers")
            if (
                type(key) is str
                and (key in known or (len(key) <= 255 and key_ok(key) and _known_key(key)))
                and type(m.get("data")) in _DATA_TYPES
                and (msg_id is None or (type(msg_id) is str and 0 < len(msg_id) <= MAX_ID_LENGTH))
                and (headers is None or _string_map(headers))
                and m.get("encoding") in (None, "utf-8")
            ):
                continue
        errors = errors or _Errors()
        _message_problems(errors, i, m)
    if errors is not None:
        errors.raise_if_any()
    _check_sizes(messages, max_message_bytes)
    return messages  # each item is now known to be a valid NewMessage


def _known_key(key: str) -> bool:
    """Remember ``key`` as valid (most streams use a few keys over and over)."""
    if len(_VALID_KEYS) >= _MAX_VALID_KEYS:
        _VALID_KEYS.clear()
    _VALID_KEYS.add(key)
    return True


def _check_sizes(messages: list[Any], limit: int) -> None:
    # A str's UTF-8 length is between len() and 4 * len(): encode only when it matters.
    quarter = limit // 4
    too_large: dict[str, list[str]] = {}
    for i, m in enumerate(messages):
        data: str | memoryview = m["data"]
        if len(data) <= quarter:
            continue
        size = (
            len(data)
            if len(data) > limit or not isinstance(data, str)  # a memoryview's len is bytes
            else len(data.encode("utf-8", "surrogatepass"))
        )
        if size > limit:
            too_large[f"messages[{i}].data"] = [f"is over {limit} bytes"]
    if too_large:
        raise TooLarge(too_large, limit)


def _string_map(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _message_problems(errors: _Errors, i: int, m: object) -> None:
    at = f"messages[{i}]"
    if not isinstance(m, dict):
        errors.add(at, "must be an object")
        return
    key = m.get("key")
    if key is None:
        errors.add(f"{at}.key", "is required")
    elif problem := key_problem(key):
        errors.add(f"{at}.key", problem)
    data = m.get("data")
    if data is None:
        errors.add(f"{at}.data", "is required")
    elif not isinstance(data, _DATA_TYPES):
        errors.add(f"{at}.data", "must be a string")
    msg_id = m.get("id")
    if msg_id is not None and (
        not isinstance(msg_id, str) or not msg_id or len(msg_id) > MAX_ID_LENGTH
    ):
        errors.add(f"{at}.id", f"must be a non-empty string of at most {MAX_ID_LENGTH} characters")
    headers = m.get("headers")
    if headers is not None and not _string_map(headers):
        errors.add(f"{at}.headers", "must be an object with string values")
    encoding = m.get("encoding")
    if encoding is not None:
        if encoding not in ("base64", "utf-8"):
            errors.add(f"{at}.encoding", "must be 'base64' or 'utf-8' (or absent)")
        elif encoding == "base64" and isinstance(data, str):
            try:
                base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                errors.add(f"{at}.data", "is not valid base64")


def ack_ids_body(body: object) -> list[str]:
    """``{"ack_ids": [...]}`` -> the ids."""
    obj = _object(body)
    ids = obj.get("ack_ids")
    if ids is None:
        raise Invalid({"ack_ids": ["is required"]})
    if not isinstance(ids, list) or not all(isinstance(a, str) for a in ids):
        raise Invalid({"ack_ids": ["must be a list of strings"]})
    if len(ids) > MAX_ACK_IDS:
        raise Invalid({"ack_ids": [f"should have at most {MAX_ACK_IDS} item(s)"]})
    return ids


def nack_reason(body: object) -> str | None:
    """The optional ``reason`` of a nack: why the handler failed, kept as the
    delivery's ``last_error``."""
    reason = _object(body).get("reason")
    if reason is None:
        return None
    if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
        raise Invalid({"reason": [f"must be a string of at most {MAX_REASON_CHARS} characters"]})
    return reason


def nack_body(body: object) -> tuple[list[str], int]:
    """``{"ack_ids": [...], "delay_ms": n}`` -> (ids, delay_ms)."""
    ids = ack_ids_body(body)
    errors = _Errors()
    delay = _int(errors, _object(body), "delay_ms", 0, minimum=0, maximum=MAX_DELAY_MS)
    errors.raise_if_any()
    assert delay is not None
    return ids, delay


# -- query parameters ---------------------------------------------------------


def int_param(
    params: Mapping[str, Any],
    name: str,
    default: int,
    *,
    minimum: int,
    maximum: int | None = None,
    clamp: bool = False,
) -> int:
    """An integer parameter (query string or JSON body); ``clamp`` caps it at ``maximum``."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, str):
        try:
            value = int(raw, 10)
        except ValueError:
            value = None
    else:
        value = raw if type(raw) is int else None
    top = MAX_INT if maximum is None else maximum
    if value is not None and value > top and clamp:
        value = top
    if value is None or value < minimum or value > top:
        raise BadParam(name, f"must be an integer between {minimum} and {top}")
    return value


def wants_ack_runs(params: Mapping[str, Any]) -> bool:
    """Whether a publish asked for ``?acks=runs`` (absent: an ack object per message)."""
    return _asks_for(params, ACKS_PARAM, ACK_RUNS)


def wants_delivery_columns(params: Mapping[str, Any]) -> bool:
    """Whether a receive asked for ``?deliveries=columns`` (absent: an object per delivery)."""
    return _asks_for(params, DELIVERIES_PARAM, DELIVERY_COLUMNS)


def _asks_for(params: Mapping[str, Any], name: str, form: str) -> bool:
    """Whether the query parameter ``name``, which only ``form`` may be, is there."""
    value = params.get(name)
    if value is None:
        return False
    if value != form:
        raise BadParam(name, f"must be {form!r} or absent")
    return True


def receive_params(
    params: Mapping[str, Any], max_wait_ms: int = DEFAULT_MAX_WAIT_MS
) -> tuple[int, int]:
    """``batch_size`` (1..1000, default 10) and ``wait_for`` ms (default 0, capped)."""
    batch = int_param(params, "batch_size", DEFAULT_RECEIVE_BATCH, minimum=1, maximum=MAX_BATCH)
    wait = int_param(params, "wait_for", 0, minimum=0, maximum=max_wait_ms, clamp=True)
    return batch, wait


def message_query(
    params: Mapping[str, Any], max_wait_ms: int = DEFAULT_MAX_WAIT_MS
) -> MessageQuery:
    """``GET .../messages`` parameters."""
    sort = params.get("sort") or "seq_asc"
    if sort not in ("seq_asc", "seq_desc"):
        raise BadParam("sort", "must be 'seq_asc' or 'seq_desc'")
    pattern = params.get("key_pattern") or None
    if pattern is not None and (problem := filter_problem(pattern)):
        raise BadParam("key_pattern", problem)
    after = params.get("after_seq")
    before = params.get("before_seq")
    return MessageQuery(
        limit=int_param(params, "limit", DEFAULT_PAGE_LIMIT, minimum=1, maximum=MAX_BATCH),
        descending=sort == "seq_desc",
        key_pattern=pattern,
        after_seq=None if after in (None, "") else int_param(params, "after_seq", 0, minimum=0),
        before_seq=None if before in (None, "") else int_param(params, "before_seq", 0, minimum=0),
        wait_ms=int_param(params, "wait_for", 0, minimum=0, maximum=max_wait_ms, clamp=True),
        from_time=time_param(params, "from_time"),
    )


def time_param(params: Mapping[str, Any], name: str) -> datetime | None:
    """An RFC 3339 timestamp parameter (``2026-01-02T03:04:05Z``), or None when absent."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    when = parse_time(raw) if isinstance(raw, str) else None
    if when is None:
        raise BadParam(
            name, "must be an RFC 3339 timestamp with an offset, e.g. 2026-01-02T03:04:05Z"
        )
    return when


def limit_param(params: Mapping[str, Any]) -> int:
    """A ``limit`` of 1..1000, default 100."""
    return int_param(params, "limit", DEFAULT_PAGE_LIMIT, minimum=1, maximum=MAX_BATCH)
