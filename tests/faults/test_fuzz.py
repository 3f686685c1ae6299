"""Fuzz: random and hostile requests at every documented route, checked against the document.

The OpenAPI document the server serves (``GET /api/openapi.json``) drives the
fuzzing: each operation gets requests built from its parameters and body schema,
either valid ones (which must then be accepted: the document is truthful) or
hostile ones (mutated bodies, wrong types, huge numbers, deep nesting, unicode,
garbage bytes, big payloads, wrong content types, odd methods and path
segments). Every answer must be below 500, free of tracebacks, a JSON error
with a ``summary`` when 4xx, listed in the document, and shaped as documented
when 2xx; the server must log no error. Afterwards the store passes an
integrity check.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamkit.protocol import routes
from streamkit.server import dashboard, openapi
from streamkit.server.openapi import NAME_PATTERN, OPERATIONS, Operation

from .fuzz_client import RawHttp, Reply, ThreadedServer
from .integrity import check_db
from .schema import Spec

FAST = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
LONG = settings(FAST, max_examples=1500, derandomize=False)

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

# -- hostile material -----------------------------------------------------------

SPECIAL_TEXT = [
    "", " ", "\x00", "a\nb", "a\n", "\n", "..", ".", "a..b", ".a", "a.", "*", ">", "a.>.b",
    "é", "😀", "\u202e", "\ufeff", "a" * 129, "k" * 256, ".".join(["t"] * 17), "null", "NaN",
    "-1", "0", "9" * 30, "\uff11\uff12", "%00", "' OR 1=1 --", "<script>", "${jndi:ldap://x}", "\\",
    "/", "?", "#", "\udcff".encode("utf-8", "surrogateescape").decode("latin-1"),
]  # fmt: skip
RAW_SEGMENTS = [
    "%", "%zz", "%ff%fe", "%00", "%2F", "..", "%2e%2e", "a%20b", "%C3%28", "~", "*", ">",
    "%E2%80%AE", "a;b", "a%3Bb", "%25", "%u0041", "%F0%9F%98%80", "%ED%A0%80",
]  # fmt: skip
HOSTILE_TEXT = st.one_of(st.sampled_from(SPECIAL_TEXT), st.text(max_size=300))
NUMBER_TEXT = st.sampled_from(
    ["", "-1", "0", "1e3", "0x10", "1_000", " 5", "5 ", "+5", "\uff11\uff12", "nan", "inf", "true",
     "null", "[]", "9" * 19, "9" * 30, "9" * 5000, "4611686018427387904", "-0", "1.0"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62 - 2, max_value=2**80),
    st.integers(max_value=-(2**62), min_value=-(2**80)),
    st.floats(allow_nan=False, allow_infinity=False),
    HOSTILE_TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(HOSTILE_TEXT, children, max_size=4)
    ),
    max_leaves=20,
)
SPECIAL_BODIES = [
    b"", b" ", b"null", b"[]", b"{}", b'"x"', b"0", b"true", b"\xef\xbb\xbf{}", b"{", b"}",
    b'{"a":1,}', b"1e400", b"-1e400", b"1" + b"0" * 400, b'"\\ud800"', b'{"messages":"\\udfff"}',
    b"\xff\xfe{\x00}\x00", b"{'messages': []}", b"NaN", b'{"messages": NaN}', b"\x00" * 64,
    b'{"messages":[{"key":"a","data":"x"}]}' * 2, b'{"a":' * 2000 + b"1" + b"}" * 2000,
    b"[" * 1025 + b"]" * 1025, b"[" * 100_000 + b"]" * 100_000,
]  # fmt: skip
CONTENT_TYPES = [
    None, "application/json", "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=zz", "application/json; charset=utf-16", "*/*",
    "application/octet-stream", "application/json; charset=latin-1",
]  # fmt: skip
NAMES = st.from_regex(NAME_PATTERN, fullmatch=True)
HEADER_TEXT = st.text(
    alphabet=st.characters(
        min_codepoint=0x20, exclude_characters="\x7f", exclude_categories=["Cc", "Cs"]
    ),
    max_size=40,
)


def dump(value: Any, ascii_only: bool = False) -> bytes:
    """JSON text of ``value`` (stdlib json: big ints stay ints)."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*at, i))


def _mutate(value: Any, path: tuple[Any, ...], action: str, new: Any) -> Any:
    if not path:
        return [value] if action == "wrap" else new
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "wrap":
        parent[last] = [parent[last]]
    else:
        parent[last] = new
    return value


def mutations(valid: Any) -> st.SearchStrategy[Any]:
    """``valid`` with one node replaced by hostile JSON, deleted or wrapped in a list."""
    return st.tuples(
        st.sampled_from(list(_paths(valid))),
        st.sampled_from(["replace", "replace", "delete", "wrap"]),
        JSON_VALUES,
    ).map(lambda t: _mutate(json.loads(json.dumps(valid)), *t))


def big_bodies(op: Operation) -> st.SearchStrategy[bytes]:
    """Large but under the body limit: a long data string, many messages, many ids."""
    size = st.integers(min_value=1, max_value=3_000_000)
    if op.body == "PublishRequest":
        return st.one_of(
            size.map(lambda n: dump({"messages": [{"key": "fz.big", "data": "x" * n}]})),
            st.integers(990, 1010).map(
                lambda n: dump({"messages": [{"key": f"fz.m{i}", "data": "d"} for i in range(n)]})
            ),
        )
    if op.body in ("AckIds", "NackBody"):
        return st.integers(9990, 10_010).map(
            lambda n: dump({"ack_ids": [f"{i}.x" for i in range(n)]})
        )
    return size.map(lambda n: dump({"name": "x" * n, "filter_key_pattern": "a" * n}))


# -- the fuzzing context ------------------------------------------------------------


@dataclass
class Fuzz:
    """The running server, a client, the served document and what the fuzzing saw."""

    server: ThreadedServer
    http: RawHttp
    doc: dict[str, Any]
    spec: Spec
    streams: list[str] = field(default_factory=list)
    consumers: list[str] = field(default_factory=list)
    ack_pool: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    plans: dict[str, Plan] = field(default_factory=dict)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else dump(body)
        reply = self.http.send(method, path, data, {"Content-Type": "application/json"})
        return reply.status, json.loads(reply.body) if reply.body else None

    def ensure_fixtures(self) -> None:
        """The stream ``fz`` (with consumer ``fc``) and ``fzk`` (one message per key) exist."""
        for name, options in (("fz", {}), ("fzk", {"one_message_per_key": True})):
            status, _ = self.call("POST", "/api/streams", {"name": name, **options})
            assert status in (201, 422)
        consumer = {"name": "fc", "filter_key_pattern": ">", "ack_wait_ms": 50, "max_deliver": 3}
        status, _ = self.call("POST", "/api/streams/fz/consumers", consumer)
        assert status in (201, 422)
        _, fz = self.call("GET", "/api/streams/fz")
        _, fc = self.call("GET", "/api/streams/fz/consumers/fc")
        self.streams = ["fz", fz["id"], "fzk"]
        self.consumers = ["fc", fc["id"]]
        if fz["stats"]["message_count"] < 20:
            messages = [{"key": f"fz.k{i % 3}", "data": f"d{i}"} for i in range(20)]
            for stream in ("fz", "fzk"):
                self.call("POST", f"/api/streams/{stream}/messages", {"messages": messages})


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    db = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    with ThreadedServer(db, max_wait_ms=30, sse_heartbeat=0.05) as server:
        url = urlsplit(server.url)
        assert url.hostname is not None and url.port is not None
        http = RawHttp(url.hostname, url.port)
        reply = http.send("GET", routes.OPENAPI.path)
        assert reply.status == 200, reply
        doc = json.loads(reply.body)
        ctx = Fuzz(server, http, doc, Spec(doc))
        ctx.ensure_fixtures()
        try:
            yield ctx
        finally:
            http.close()
    check_db(db).assert_ok()


# -- one request --------------------------------------------------------------------


@dataclass
class Request:
    method: str
    target: str
    body: bytes | None
    headers: dict[str, str | bytes]
    valid: bool

    def __repr__(self) -> str:
        body = None if self.body is None else self.body[:200]
        return f"{self.method} {self.target[:300]} {self.headers} body={body!r}"


def draw_segment(data: st.DataObject, ctx: Fuzz, kind: str, valid: bool) -> str:
    known = ctx.streams if kind == "stream" else ctx.consumers
    if valid:
        return quote(data.draw(st.sampled_from(known)), safe="")
    choice = data.draw(st.sampled_from(["known", "known", "name", "text", "raw"]))
    if choice == "known":
        return quote(data.draw(st.sampled_from(known)), safe="")
    if choice == "name":
        return data.draw(NAMES)
    if choice == "text":
        return quote(data.draw(HOSTILE_TEXT), safe="")
    return data.draw(st.sampled_from(RAW_SEGMENTS))


def _utf8(text: str) -> bytes:
    """A header value sent as UTF-8 bytes (http.client would refuse non-latin-1 text)."""
    return text.encode("utf-8")


def _query_value(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


@dataclass
class Plan:
    """An operation's request strategies, built once from the served document."""

    query_valid: dict[str, st.SearchStrategy[str | None]]
    query_hostile: dict[str, st.SearchStrategy[str | None]]
    headers_valid: dict[str, st.SearchStrategy[str]]
    body_valid: st.SearchStrategy[Any] | None
    body_required: bool
    body_hostile: st.SearchStrategy[bytes | None]
    method: st.SearchStrategy[str]


def plan(ctx: Fuzz, op: Operation) -> Plan:
    found = ctx.plans.get(op.operation_id)
    if found is not None:
        return found
    served = ctx.doc["paths"][op.path][op.method]
    query_valid: dict[str, st.SearchStrategy[str | None]] = {}
    query_hostile: dict[str, st.SearchStrategy[str | None]] = {}
    headers_valid: dict[str, st.SearchStrategy[str]] = {}
    for param in served["parameters"]:
        values = ctx.spec.valid(param["schema"])
        if param["in"] == "query" and param["name"] == "stream":
            # names a stream (the dashboard's): valid only when it exists, as in a path
            values = st.sampled_from(ctx.streams)
        if param["in"] == "query":
            query_valid[param["name"]] = st.one_of(st.none(), values.map(_query_value))
            query_hostile[param["name"]] = st.one_of(
                st.none(), values.map(_query_value), NUMBER_TEXT, HOSTILE_TEXT
            )
        elif param["in"] == "header":
            headers_valid[param["name"]] = values
    bodies: list[st.SearchStrategy[bytes | None]] = [
        st.none(),
        JSON_VALUES.map(dump),
        st.binary(max_size=500),
        st.sampled_from(SPECIAL_BODIES),
    ]
    body_valid = None
    body = served.get("requestBody")
    if body is not None:
        body_valid = ctx.spec.valid(body["content"]["application/json"]["schema"])
        mutated = body_valid.flatmap(mutations).map(dump)
        bodies += [mutated, mutated, big_bodies(op)]
    found = ctx.plans[op.operation_id] = Plan(
        query_valid=query_valid,
        query_hostile=query_hostile,
        headers_valid=headers_valid,
        body_valid=body_valid,
        body_required=bool(body and body.get("required")),
        body_hostile=st.one_of(bodies),
        method=st.sampled_from([op.method.upper()] * 12 + METHODS),
    )
    return found


EXTRA_PARAMS = st.lists(st.tuples(HOSTILE_TEXT, HOSTILE_TEXT), max_size=2)
POOL_PICKS = st.lists(st.integers(0, 10**6), max_size=5)


def draw_request(data: st.DataObject, ctx: Fuzz, op: Operation) -> Request:
    how = plan(ctx, op)
    valid = data.draw(st.booleans(), label="valid")
    path = op.path
    if "{stream}" in path:
        if valid and "{consumer}" in path:
            stream = quote(data.draw(st.sampled_from(ctx.streams[:2])), safe="")  # fc is on fz
        else:
            stream = draw_segment(data, ctx, "stream", valid)
        path = path.replace("{stream}", stream)
    if "{consumer}" in path:
        path = path.replace("{consumer}", draw_segment(data, ctx, "consumer", valid))
    if valid and op.method == "delete":
        path = arrange_victim(data, ctx, op)

    pairs: list[tuple[str, str]] = []
    for name, strategy in (how.query_valid if valid else how.query_hostile).items():
        value = data.draw(strategy, label=name)
        if value is not None:
            pairs.append((name, value))
    if not valid:
        pairs += data.draw(EXTRA_PARAMS)
        repeat = data.draw(st.booleans())
        if pairs and repeat:
            pairs.append(pairs[0])  # a repeated parameter
    target = path + ("?" + urlencode(pairs, quote_via=quote) if pairs else "")

    headers: dict[str, str | bytes] = {}
    body: bytes | None = None
    if valid:
        if how.body_valid is not None and (how.body_required or data.draw(st.booleans())):
            value = data.draw(how.body_valid)
            if "ack_ids" in value and ctx.ack_pool:
                picks = data.draw(POOL_PICKS)
                value["ack_ids"] += [ctx.ack_pool[i % len(ctx.ack_pool)] for i in picks]
            body = dump(value, data.draw(st.booleans()))
            headers["Content-Type"] = "application/json"
        for name, strategy in how.headers_valid.items():
            if data.draw(st.booleans()):
                headers[name] = data.draw(strategy)
        return Request(op.method.upper(), target, body, headers, valid=True)

    method = data.draw(how.method, label="method")
    body = data.draw(how.body_hostile, label="body")
    content_type = data.draw(st.sampled_from(CONTENT_TYPES), label="content-type")
    if content_type is not None:
        headers["Content-Type"] = content_type
    for name in how.headers_valid:
        if data.draw(st.booleans()):
            headers[name] = data.draw(st.one_of(HEADER_TEXT, NUMBER_TEXT).map(_utf8))
    return Request(method, target, body, headers, valid=False)


def arrange_victim(data: st.DataObject, ctx: Fuzz, op: Operation) -> str:
    """For a valid delete: create something to delete, return its path."""
    name = "v-" + data.draw(NAMES)[:100]
    if "{consumer}" in op.path:
        body = {"name": name, "filter_key_pattern": ">"}
        status, _ = ctx.call("POST", "/api/streams/fz/consumers", body)
        assert status in (201, 422)
        return f"/api/streams/fz/consumers/{name}"
    status, _ = ctx.call("POST", "/api/streams", {"name": name})
    assert status in (201, 422)
    return f"/api/streams/{name}"


def check(ctx: Fuzz, op: Operation, request: Request, reply: Reply, errors_before: int) -> None:
    where = f"{request!r}\n -> {reply.status} {reply.content_type} {reply.body[:500]!r}"
    assert reply.status < 500, where
    assert b"Traceback" not in reply.body and b'File "' not in reply.body, where
    logged = ctx.server.errors.records[errors_before:]
    assert not logged, f"{where}\nserver logged: {[r.getMessage() for r in logged]}"
    if len(request.target) > 8000 and reply.status in (400, 414):
        return  # refused by the parser (request target over MAX_URL_BYTES), before any route
    # Another method on the same path may be another documented operation.
    documented = ctx.doc["paths"][op.path].get(request.method.lower(), {}).get("responses")
    if documented is None:
        assert reply.status in (404, 405), where
        assert reply.content_type == "application/json", where
        assert "summary" in json.loads(reply.body), where
        return
    if reply.status >= 400:
        assert reply.content_type == "application/json", where
        body = json.loads(reply.body)
        problems = ctx.spec.errors({"$ref": "#/components/schemas/Error"}, body)
        assert not problems, f"{where}\n{problems}"
        assert str(reply.status) in documented, f"undocumented status: {where}"
    else:
        assert str(reply.status) in documented, f"undocumented status: {where}"
        content = documented[str(reply.status)].get("content")
        if content is None:  # a 204
            assert reply.body == b"", where
        elif reply.content_type == "application/json":
            schema = content["application/json"]["schema"]
            problems = ctx.spec.errors(schema, json.loads(reply.body))
            assert not problems, f"{where}\n{problems[:5]}"
        else:
            assert reply.content_type in content, where
    if request.valid:
        taken = reply.status == 422 and b"has already been taken" in reply.body
        assert reply.status < 400 or taken, f"a request the document calls valid failed: {where}"


def fuzz_once(ctx: Fuzz, op: Operation, data: st.DataObject) -> None:
    request = draw_request(data, ctx, op)
    before = len(ctx.server.errors.records)
    reply = ctx.http.send(request.method, request.target, request.body, request.headers)
    ctx.statuses.setdefault(op.operation_id, Counter())[reply.status] += 1
    if op.operation_id.startswith("receive") and reply.status == 200:
        deliveries = json.loads(reply.body)["data"]
        if isinstance(deliveries, dict):  # ?deliveries=columns
            ctx.ack_pool.extend(deliveries["ack_id"])
        else:
            ctx.ack_pool.extend(d["ack_id"] for d in deliveries)
    if request.method == "DELETE":
        ctx.ensure_fixtures()
    check(ctx, op, request, reply, before)


def _documented(ctx: Fuzz, op: Operation) -> None:
    if op.method not in ctx.doc["paths"].get(op.path, {}):
        pytest.skip(f"{op.method.upper()} {op.path} is not served by this app")


OP_IDS = [op.operation_id for op in OPERATIONS]


@pytest.mark.parametrize("op", OPERATIONS, ids=OP_IDS)
def test_fuzz_route(
    fuzz: Fuzz, op: Operation, record_property: Callable[[str, object], None]
) -> None:
    _documented(fuzz, op)

    @FAST
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        fuzz_once(fuzz, op, data)

    run()
    record_property("statuses", dict(fuzz.statuses.get(op.operation_id, {})))


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("op", OPERATIONS, ids=OP_IDS)
def test_fuzz_route_long(
    fuzz: Fuzz, op: Operation, record_property: Callable[[str, object], None]
) -> None:
    _documented(fuzz, op)

    @LONG
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        fuzz_once(fuzz, op, data)

    run()
    record_property("statuses", dict(fuzz.statuses.get(op.operation_id, {})))


# -- fixed extremes and the aftermath ---------------------------------


def test_oversized_bodies_get_413(fuzz: Fuzz) -> None:
    huge = dump({"messages": [{"key": "fz.huge", "data": "x" * (17 * 1024 * 1024)}]})
    _, before = fuzz.call("GET", "/api/streams/fz")
    for path in ("/api/streams/fz/messages", "/api/streams", "/api/streams/fz/consumers/fc/ack"):
        reply = fuzz.http.send("POST", path, huge, {"Content-Type": "application/json"})
        assert reply.status == 413, reply
        assert "summary" in json.loads(reply.body)
        fuzz.http.close()
    _, after = fuzz.call("GET", "/api/streams/fz")
    assert after["stats"]["message_count"] == before["stats"]["message_count"]


def test_document_covers_every_route(fuzz: Fuzz) -> None:
    assert fuzz.server.handle is not None
    # the dashboard's pages are files, not API operations (what they poll is documented)
    routes = openapi.registered(fuzz.server.handle.app.router) - dashboard.PAGES
    assert not openapi.undocumented(routes), "document these routes in streamkit/server/openapi.py"
    served = {(m, p) for p, ops in fuzz.doc["paths"].items() for m in ops}
    assert served == routes
    assert fuzz.doc["openapi"].startswith("3.")
    refs = [node for node in _walk(fuzz.doc) if isinstance(node, dict) and "$ref" in node]
    for node in refs:
        fuzz.spec.deref(node)  # every reference resolves


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def test_store_integrity_after_fuzz(
    fuzz: Fuzz, record_property: Callable[[str, object], None]
) -> None:
    """Runs last in this module: the database and the API agree after all of the above."""
    integrity = check_db(fuzz.server.db)
    integrity.assert_ok()
    status, listing = fuzz.call("GET", "/api/streams")
    assert status == 200
    read_total = 0
    for stream in listing["data"]:
        seen, after = 0, 0
        for _ in range(1000):  # bounded paging
            status, page = fuzz.call("GET", f"/api/streams/{stream['id']}/messages?limit=1000"
                                     f"&after_seq={after}")  # fmt: skip
            assert status == 200
            seen += len(page["data"])
            if len(page["data"]) < 1000:
                break
            after = page["data"][-1]["seq"]
        assert seen == stream["stats"]["message_count"], stream["name"]
        read_total += seen
        status, consumers = fuzz.call("GET", f"/api/streams/{stream['id']}/consumers")
        for consumer in consumers["data"]:
            status, one = fuzz.call(
                "GET", f"/api/streams/{stream['id']}/consumers/{consumer['id']}"
            )
            if status == 404:  # an ephemeral one the reaper just took
                continue
            assert status == 200
            assert min(one["stats"].values()) >= 0, one
    assert read_total == integrity.messages
    record_property(
        "figures",
        {
            "streams": integrity.streams,
            "messages": integrity.messages,
            "consumers": integrity.consumers,
            "deliveries": integrity.deliveries,
            "requests": sum(sum(c.values()) for c in fuzz.statuses.values()),
            "statuses": dict(sum(fuzz.statuses.values(), Counter())),
        },
    )
