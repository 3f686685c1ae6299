"""Stream and consumer metadata kept in JetStream itself.

What JetStream has no field for (the uuid, ``inserted_at``, stream options,
``ephemeral``) lives in the ``metadata`` map of the stream or consumer config,
written in the same API call that creates it: there is no second record that
a crash could leave behind or out of step. `Catalog` resolves refs
(names or ids) to JetStream names, caching what never changes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from streamkit.protocol.keys import name_problem
from streamkit.protocol.wire import StartPosition, format_time
from streamkit.server.store.base import (
    DEFAULT_INACTIVE_THRESHOLD_MS,
    ConsumerRecord,
    ConsumerSpec,
    ConsumerStats,
    StoreInvalid,
    StoreNotFound,
    StreamOptions,
    StreamRecord,
    StreamStats,
)
from streamkit.server.store.jetstream.codec import (
    Naming,
    advisory_subject,
    ns_to_datetime,
)
from streamkit.server.store.jetstream.conn import (
    ERR_CONSUMER_NOT_FOUND,
    ERR_STREAM_NOT_FOUND,
    JsApiError,
    JsConn,
)

META_ID = "streamkit.id"
META_NAME = "streamkit.name"
META_INSERTED = "streamkit.inserted_at"
META_OPTIONS = "streamkit.options"
META_PATTERN = "streamkit.filter_key_pattern"
META_EPHEMERAL = "streamkit.ephemeral"

MAX_WAITING = 512
"""Pull requests (long-polls) one consumer holds at once, across all gateways."""

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MS = 1_000_000
_INT64_MAX = 2**63 - 1
"""JetStream's limits are int64: a larger byte limit or age is as good as none."""


def is_id(ref: str) -> bool:
    """Whether ``ref`` has the shape of the ids this engine hands out."""
    return bool(_UUID.match(ref))


def check_name(ref: str, kind: str) -> str:
    """``ref`` if it can be a name; else it can't match anything (404, never a bad subject)."""
    if name_problem(ref) is not None:
        raise StoreNotFound("stream" if kind == "stream" else "consumer")
    return ref


@dataclass(frozen=True)
class StreamHandle:
    """The immutable facts about one stream (one incarnation of a name)."""

    id: str
    name: str
    js_name: str
    root: str
    options: StreamOptions
    inserted_at: datetime


# -- streams --------------------------------------------------------------------


def stream_config(
    naming: Naming,
    name: str,
    stream_id: str,
    options: StreamOptions,
    inserted_ns: int,
    *,
    replicas: int,
    dedupe_window_ms: int,
) -> dict[str, Any]:
    """The JetStream config of a new stream."""
    return {
        "name": naming.js_stream(name),
        "subjects": [naming.root(stream_id) + ">"],
        "retention": "limits",
        "storage": "file",
        "discard": "old",
        "max_msgs_per_subject": 1 if options.one_message_per_key else -1,
        **retention_config(options, dedupe_window_ms),
        "num_replicas": replicas,
        "allow_direct": True,
        "allow_atomic": True,
        "metadata": {
            META_ID: stream_id,
            META_NAME: name,
            META_INSERTED: str(inserted_ns),
            META_OPTIONS: orjson.dumps(dataclasses.asdict(options)).decode(),
        },
    }


def retention_config(options: StreamOptions, dedupe_window_ms: int) -> dict[str, Any]:
    """The JetStream limits for ``options``: ``max_msgs``, ``max_bytes``, ``max_age``.

    JetStream has no floor like ``retain_at_least``: it is stored, not enforced.
    Its ``duplicate_window`` may not exceed ``max_age``, so it is capped by it.
    """
    byte_limit = options.byte_limit
    window = dedupe_window_ms
    if options.max_age_ms is not None:
        window = min(window, options.max_age_ms)
    return {
        "max_msgs": options.retain_up_to if options.retain_up_to is not None else -1,
        "max_bytes": min(byte_limit, _INT64_MAX) if byte_limit is not None else -1,
        "max_age": min(options.max_age_ms * _MS, _INT64_MAX) if options.max_age_ms else 0,
        "duplicate_window": window * _MS,
    }


ERR_INSUFFICIENT_STORAGE = 10047
"""JetStream's answer to a ``max_bytes`` above what its account or server can store."""


def storage_refused(options: StreamOptions) -> StoreInvalid:
    """The 422 for a byte limit JetStream refused (`ERR_INSUFFICIENT_STORAGE`)."""
    field_name = "max_bytes" if options.byte_limit == options.max_bytes else "max_storage_gb"
    return StoreInvalid({field_name: ["is more than the JetStream server can store"]})


def updated_stream_config(
    config: dict[str, Any], options: StreamOptions, dedupe_window_ms: int
) -> dict[str, Any]:
    """``config`` (of a stream's info) with the limits and metadata of new ``options``."""
    metadata = dict(config.get("metadata") or {})
    metadata[META_OPTIONS] = orjson.dumps(dataclasses.asdict(options)).decode()
    return {**config, **retention_config(options, dedupe_window_ms), "metadata": metadata}


def dead_stream_config(naming: Naming, handle: StreamHandle, *, replicas: int) -> dict[str, Any]:
    """The stream capturing ``handle``'s max-deliveries advisories (its dead letters)."""
    return {
        "name": naming.dead_stream(handle.name),
        "subjects": [advisory_subject(handle.js_name)],
        "retention": "limits",
        "storage": "file",
        "discard": "old",
        "num_replicas": replicas,
        "allow_direct": True,
        "metadata": {META_ID: handle.id, META_NAME: handle.name},
    }


def handle_from_info(naming: Naming, info: dict[str, Any]) -> StreamHandle | None:
    """The handle of a stream-info response, None if it is not one of ours."""
    config = info.get("config") or {}
    meta = config.get("metadata") or {}
    stream_id, name = meta.get(META_ID), meta.get(META_NAME)
    if not stream_id or not name or config.get("name") != naming.js_stream(name):
        return None
    if config.get("subjects") != [naming.root(stream_id) + ">"]:
        return None
    options = StreamOptions(**orjson.loads(meta.get(META_OPTIONS, "{}")))
    return StreamHandle(
        id=stream_id,
        name=name,
        js_name=config["name"],
        root=naming.root(stream_id),
        options=options,
        inserted_at=ns_to_datetime(int(meta.get(META_INSERTED, "0"))),
    )


def stream_record(handle: StreamHandle, info: dict[str, Any], account_id: str) -> StreamRecord:
    """A stream record with the stats of ``info``'s state."""
    state = info.get("state") or {}
    return StreamRecord(
        id=handle.id,
        name=handle.name,
        account_id=account_id,
        options=handle.options,
        inserted_at=handle.inserted_at,
        updated_at=handle.inserted_at,
        stats=StreamStats(
            message_count=int(state.get("messages", 0)),
            consumer_count=int(state.get("consumer_count", 0)),
            storage_size=int(state.get("bytes", 0)),
        ),
    )


# -- consumers ----------------------------------------------------------------------


def consumer_config(
    handle: StreamHandle, spec: ConsumerSpec, consumer_id: str, inserted_ns: int
) -> dict[str, Any]:
    """The JetStream config of a new durable pull consumer."""
    config: dict[str, Any] = {
        "name": spec.name,
        "durable_name": spec.name,
        "ack_policy": "explicit",
        "ack_wait": spec.ack_wait_ms * _MS,
        "max_deliver": spec.max_deliver if spec.max_deliver is not None else -1,
        "max_ack_pending": spec.max_ack_pending,
        "max_waiting": MAX_WAITING,
        "filter_subject": handle.root + spec.filter_key_pattern,
        "replay_policy": "instant",
        "metadata": {
            META_ID: consumer_id,
            META_INSERTED: str(inserted_ns),
            META_PATTERN: spec.filter_key_pattern,
            META_EPHEMERAL: "1" if spec.ephemeral else "0",
        },
    }
    config.update(start_policy(spec.start))
    if spec.ephemeral:
        threshold = spec.inactive_threshold_ms or DEFAULT_INACTIVE_THRESHOLD_MS
        config["inactive_threshold"] = threshold * _MS
    return config


def start_policy(start: StartPosition) -> dict[str, Any]:
    """The ``deliver_policy`` (and its ``opt_start_*``) of a consumer starting at ``start``."""
    if start == "new":
        return {"deliver_policy": "new"}
    if isinstance(start, datetime):
        return {"deliver_policy": "by_start_time", "opt_start_time": format_time(start)}
    if isinstance(start, int) and start > 1:
        return {"deliver_policy": "by_start_sequence", "opt_start_seq": start}
    return {"deliver_policy": "all"}


def restarted_config(config: dict[str, Any], start: StartPosition) -> dict[str, Any]:
    """An existing consumer's config, to create it again starting at ``start``."""
    kept = {
        k: v
        for k, v in config.items()
        if k not in ("deliver_policy", "opt_start_seq", "opt_start_time")
    }
    return {**kept, **start_policy(start)}


def consumer_record(
    handle: StreamHandle,
    info: dict[str, Any],
    account_id: str,
    stats: ConsumerStats | None = None,
) -> ConsumerRecord | None:
    """A consumer record from consumer info; None if it is not one of ours."""
    config = info.get("config") or {}
    meta = config.get("metadata") or {}
    consumer_id = meta.get(META_ID)
    if not consumer_id:
        return None
    ephemeral = meta.get(META_EPHEMERAL) == "1"
    max_deliver = int(config.get("max_deliver", -1))
    inserted = ns_to_datetime(int(meta.get(META_INSERTED, "0")))
    threshold = config.get("inactive_threshold")
    return ConsumerRecord(
        id=consumer_id,
        name=str(info.get("name") or config.get("durable_name")),
        stream_id=handle.id,
        account_id=account_id,
        filter_key_pattern=meta.get(META_PATTERN)
        or str(config.get("filter_subject", ""))[len(handle.root) :],
        ack_wait_ms=int(config.get("ack_wait", 0)) // _MS,
        max_ack_pending=int(config.get("max_ack_pending", 0)),
        max_deliver=max_deliver if max_deliver > 0 else None,
        ephemeral=ephemeral,
        inactive_threshold_ms=int(threshold) // _MS if ephemeral and threshold else None,
        inserted_at=inserted,
        updated_at=inserted,
        stats=stats,
    )


def new_id() -> str:
    """A fresh stream or consumer id."""
    return str(uuid.uuid4())


# -- resolving refs ---------------------------------------------------------------------


class Catalog:
    """Resolves stream and consumer refs; caches handles for ``ttl`` seconds.

    A cached handle can outlive its stream (another gateway deleted it): every
    operation that uses one fails cleanly in that case (nothing listens on the
    old subjects), and callers then `forget` it and resolve again.
    """

    def __init__(self, conn: JsConn, naming: Naming, *, ttl: float = 30.0) -> None:
        self._conn = conn
        self._naming = naming
        self._ttl = ttl
        self._by_name: dict[str, tuple[float, StreamHandle]] = {}
        self._stream_ids: dict[str, str] = {}
        self._consumer_ids: dict[tuple[str, str], str] = {}

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def remember(self, handle: StreamHandle) -> None:
        """Cache a handle just created or read."""
        self._by_name[handle.name] = (self._now() + self._ttl, handle)
        self._stream_ids[handle.id] = handle.name

    def forget(self, handle: StreamHandle) -> None:
        """Drop a handle that turned out stale (or was deleted)."""
        cached = self._by_name.get(handle.name)
        if cached is not None and cached[1].id == handle.id:
            del self._by_name[handle.name]
        self._stream_ids.pop(handle.id, None)
        for key in [k for k in self._consumer_ids if k[0] == handle.js_name]:
            del self._consumer_ids[key]

    async def info(self, name: str) -> tuple[StreamHandle, dict[str, Any]] | None:
        """Fresh stream info by name (None when there is no such stream), cached."""
        try:
            info = await self._conn.api(f"STREAM.INFO.{self._naming.js_stream(name)}")
        except JsApiError as exc:
            if exc.err_code == ERR_STREAM_NOT_FOUND:
                return None
            raise
        handle = handle_from_info(self._naming, info)
        if handle is None:
            return None
        self.remember(handle)
        return handle, info

    async def list_infos(self) -> list[tuple[StreamHandle, dict[str, Any]]]:
        """Every stream under this prefix with its info (refreshes the cache)."""
        out: list[tuple[StreamHandle, dict[str, Any]]] = []
        offset = 0
        while True:
            page = await self._conn.api(
                "STREAM.LIST", {"offset": offset, "subject": self._naming.all_subjects()}
            )
            infos = page.get("streams") or []
            for info in infos:
                handle = handle_from_info(self._naming, info)
                if handle is not None:
                    self.remember(handle)
                    out.append((handle, info))
            offset += len(infos)
            if not infos or offset >= int(page.get("total", 0)):
                return out

    async def stream(self, ref: str) -> StreamHandle:
        """The stream ``ref`` names (an id wins over a name); `StoreNotFound`."""
        if is_id(ref):
            name = self._stream_ids.get(ref)
            if name is None:
                await self.list_infos()
                name = self._stream_ids.get(ref)
            if name is not None:
                handle = await self._named(name)
                if handle is not None and handle.id == ref:
                    return handle
                self._stream_ids.pop(ref, None)
        handle = await self._named(check_name(ref, "stream"))
        if handle is None:
            raise StoreNotFound("stream")
        return handle

    async def _named(self, name: str) -> StreamHandle | None:
        cached = self._by_name.get(name)
        if cached is not None and cached[0] > self._now():
            return cached[1]
        found = await self.info(name)
        return found[0] if found is not None else None

    async def consumer_name(self, handle: StreamHandle, ref: str) -> str:
        """The name of the consumer ``ref`` names on ``handle``'s stream.

        Names are not checked for existence here: the operation that uses one
        finds out (and raises `StoreNotFound`).
        """
        if is_id(ref):
            key = (handle.js_name, ref)
            name = self._consumer_ids.get(key)
            if name is None:
                for info in await self.consumer_infos(handle):
                    meta = (info.get("config") or {}).get("metadata") or {}
                    if meta.get(META_ID):
                        self._consumer_ids[(handle.js_name, meta[META_ID])] = info["name"]
                name = self._consumer_ids.get(key)
            if name is not None:
                return name
        return check_name(ref, "consumer")

    def remember_consumer(self, handle: StreamHandle, consumer_id: str, name: str) -> None:
        """Cache a consumer id just created."""
        self._consumer_ids[(handle.js_name, consumer_id)] = name

    def forget_consumer(self, handle: StreamHandle, consumer_id: str) -> None:
        """Drop a deleted consumer's id."""
        self._consumer_ids.pop((handle.js_name, consumer_id), None)

    async def consumer_infos(self, handle: StreamHandle) -> list[dict[str, Any]]:
        """Info of every consumer on the stream."""
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            try:
                page = await self._conn.api(f"CONSUMER.LIST.{handle.js_name}", {"offset": offset})
            except JsApiError as exc:
                if exc.err_code == ERR_STREAM_NOT_FOUND:
                    self.forget(handle)
                    raise StoreNotFound("stream") from None
                raise
            infos = page.get("consumers") or []
            out.extend(infos)
            offset += len(infos)
            if not infos or offset >= int(page.get("total", 0)):
                return out

    async def consumer_info(self, handle: StreamHandle, name: str) -> dict[str, Any]:
        """Fresh consumer info; `StoreNotFound` for a missing stream or consumer."""
        try:
            return await self._conn.api(f"CONSUMER.INFO.{handle.js_name}.{name}")
        except JsApiError as exc:
            if exc.err_code == ERR_STREAM_NOT_FOUND:
                self.forget(handle)
                raise StoreNotFound("stream") from None
            if exc.err_code == ERR_CONSUMER_NOT_FOUND:
                raise StoreNotFound("consumer") from None
            raise
