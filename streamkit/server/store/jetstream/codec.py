"""How streamkit's model is spelled in JetStream: names, subjects, headers, ack ids.

A streamkit stream ``orders`` (id ``6f1c…``) under the prefix ``streamkit`` is:

- the JetStream stream ``streamkit_orders`` over the subjects ``streamkit.6f1c….>``;
  the name makes JetStream enforce unique stream names for every gateway, the
  id in the subject means a gateway holding a stale cache entry for a deleted
  and re-created stream publishes into nothing (and notices) instead of into
  the new stream;
- a message with key ``orders.eu.7`` is stored on ``streamkit.6f1c….orders.eu.7``;
- its dead letters (``max_deliver`` advisories) live in ``streamkit_orders~dead``.

Message fields JetStream has no slot for travel in headers: the publish ``id``
as ``Nats-Msg-Id`` (JetStream dedupes on it), user headers as one ASCII JSON
header, the encoding, and for ``one_message_per_key`` streams the time the key
was first inserted. Header values must be single-line ASCII-safe text, so
anything else is encoded.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import orjson

from streamkit.server.store.base import Message

HDR_MSG_ID = "Nats-Msg-Id"
HDR_HEADERS = "Streamkit-Headers"
HDR_ENCODING = "Streamkit-Encoding"
HDR_INSERTED = "Streamkit-Inserted-At"
"""Nanoseconds since the epoch at which the key was first stored (compacting streams)."""

ACK_PREFIX = "$JS.ACK."
ADVISORY_MAX_DELIVERIES = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"

_PREFIX = re.compile(r"^[A-Za-z0-9-]{1,32}$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_\-.:/@+=~]+$")
_ACK_BODY = re.compile(r"^[^\s.*>]+(?:\.[^\s.*>]+)*$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` can't be a subject prefix, or None (one token of ``[A-Za-z0-9-]``)."""
    if not _PREFIX.match(prefix):
        return "must be 1-32 letters, digits or '-' (one subject token, no '_')"
    return None


@dataclass(frozen=True)
class Naming:
    """Names and subjects under one prefix (several deployments may share a NATS account)."""

    prefix: str

    def js_stream(self, name: str) -> str:
        """The JetStream stream holding streamkit stream ``name``'s messages."""
        return f"{self.prefix}_{name}"

    def dead_stream(self, name: str) -> str:
        """The JetStream stream capturing ``name``'s max-deliveries advisories."""
        # '~' can't appear in a prefix or a streamkit name, so this never
        # collides with a data stream.
        return f"{self.prefix}_{name}~dead"

    def root(self, stream_id: str) -> str:
        """The subject prefix (with trailing dot) of every message of a stream."""
        return f"{self.prefix}.{stream_id}."

    def all_subjects(self) -> str:
        """A filter matching every streamkit message subject under this prefix."""
        return f"{self.prefix}.>"


def advisory_subject(js_stream: str, consumer: str = "*") -> str:
    """The subject JetStream announces a consumer's max-delivered messages on."""
    return f"{ADVISORY_MAX_DELIVERIES}.{js_stream}.{consumer}"


# -- timestamps -----------------------------------------------------------------


def ns_to_datetime(ns: int) -> datetime:
    """Nanoseconds since the epoch as an aware UTC datetime (microsecond precision)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def datetime_to_ns(when: datetime) -> int:
    """An aware datetime as nanoseconds since the epoch."""
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def parse_rfc3339_ns(text: str) -> int:
    """JetStream's ``2026-01-02T03:04:05.123456789Z`` as nanoseconds since the epoch."""
    head, _, frac = text.rstrip("Z").partition(".")
    whole = datetime.fromisoformat(head[:19]).replace(tzinfo=timezone.utc)
    digits = (frac + "000000000")[:9] if frac else "0"
    return datetime_to_ns(whole) + int(digits)


# -- message ids and headers -------------------------------------------------------


def encode_msg_id(msg_id: str) -> str:
    """A publish id as a ``Nats-Msg-Id`` value (encoded unless it is plain ASCII)."""
    if _SAFE_ID.match(msg_id):
        return msg_id
    # '!' is outside the safe alphabet, so encoded ids never equal plain ones.
    return "!" + base64.urlsafe_b64encode(msg_id.encode()).decode().rstrip("=")


def decode_msg_id(value: str) -> str:
    """Inverse of `encode_msg_id`."""
    if value.startswith("!"):
        raw = value[1:]
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    return value


def encode_headers(headers: dict[str, str]) -> str:
    """User headers as one single-line ASCII header value."""
    return json.dumps(headers, ensure_ascii=True, separators=(",", ":"))


def decode_message(
    subject: str,
    data: bytes,
    headers: dict[str, str] | None,
    seq: int,
    stored_ns: int,
    root: str,
    stream_id: str,
) -> Message:
    """A stored JetStream message as a wire-shaped `Message`."""
    text = data.decode()
    stored = ns_to_datetime(stored_ns)
    msg: Message = {
        "key": subject[len(root) :],
        "stream_id": stream_id,
        "data": text,
        "seq": seq,
        "inserted_at": stored,
        "updated_at": stored,
    }
    if headers:
        inserted = headers.get(HDR_INSERTED)
        if inserted is not None:
            msg["inserted_at"] = ns_to_datetime(int(inserted))
        msg_id = headers.get(HDR_MSG_ID)
        if msg_id is not None:
            msg["id"] = decode_msg_id(msg_id)
        user = headers.get(HDR_HEADERS)
        if user is not None:
            msg["headers"] = orjson.loads(user)
        encoding = headers.get(HDR_ENCODING)
        if encoding is not None:
            msg["encoding"] = encoding
    return msg


# -- ack ids -----------------------------------------------------------------------


@dataclass(frozen=True)
class AckRef:
    """What a JetStream ack reply subject says about one delivery."""

    subject: str
    stream: str
    consumer: str
    delivery_count: int
    stream_seq: int
    timestamp_ns: int


def parse_ack_subject(subject: str) -> AckRef | None:
    """Parse ``$JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<cseq>.<ts>.<pending>`` (v1)
    or the v2 form with domain and account hash in front (and an optional token)."""
    if not subject.startswith(ACK_PREFIX):
        return None
    body = subject[len(ACK_PREFIX) :]
    if not _ACK_BODY.match(body):
        return None
    tokens = body.split(".")
    if len(tokens) == 7:
        base = 0
    elif len(tokens) in (9, 10):
        base = 2
    else:
        return None
    try:
        dc, sseq, _, ts = (int(t) for t in tokens[base + 2 : base + 6])
    except ValueError:
        return None
    return AckRef(subject, tokens[base], tokens[base + 1], dc, sseq, ts)


def ack_id_for(subject: str) -> str:
    """The opaque ack id handed to clients: the reply subject, URL-safe base64."""
    raw = subject[len(ACK_PREFIX) :].encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_ack_id(ack_id: str, js_stream: str, consumer: str) -> AckRef | None:
    """The delivery behind ``ack_id`` if it is well formed and belongs to this consumer.

    Anything else is None: an ack id must never make the gateway publish to a
    subject other than this consumer's own ack subjects.
    """
    if not ack_id or len(ack_id) > 1024:
        return None
    try:
        raw = base64.urlsafe_b64decode(ack_id + "=" * (-len(ack_id) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        return None
    ref = parse_ack_subject(ACK_PREFIX + raw)
    if ref is None or ref.stream != js_stream or ref.consumer != consumer:
        return None
    return ref
