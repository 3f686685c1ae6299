"""Security: bearer auth on every route but /health, body limits, long-poll caps, TLS."""

from __future__ import annotations

import asyncio
import inspect
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import streamkit
from streamkit import Event
from streamkit.server import app as server_app
from streamkit.server import dashboard
from streamkit.server.runner import tls_context
from streamkit.server.state import LONG_POLLS
from streamkit.testing import ServerHandle, run_server
from tests.server_process import ServerProcess

KEY = "s3cret-key-0123456789"
BAD_AUTH: list[dict[str, str]] = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Bearer {KEY[:-1]}"},
    {"Authorization": f"Bearer {KEY}x"},
    {"Authorization": f"bearer {KEY}"},
    {"Authorization": f"Basic {KEY}"},
    {"Authorization": KEY},
    {"Authorization": f"Bearer  {KEY}"},
    {"Authorization": f"Bearer {KEY.upper()}"},
    {"X-Api-Key": KEY},
]


def _path(formatter: str) -> str:
    return formatter.replace("{stream}", "sec").replace("{consumer}", "sec-c")


async def _status(
    http: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str]
) -> tuple[int, dict[str, Any] | None, str]:
    body = b'{"ack_ids": []}' if method == "POST" else None
    async with http.request(method, url, headers=headers, data=body) as resp:
        if resp.content_type == "text/event-stream":
            return resp.status, None, ""  # a live tail: don't wait for it to end
        payload = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, payload, resp.headers.get("WWW-Authenticate", "")


async def test_every_route_but_health_needs_the_key(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    async with run_server(tmp_path / "auth.db", api_key=KEY, max_wait_ms=50) as server:
        good = {"Authorization": f"Bearer {KEY}"}
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            await http.post(f"{server.url}/api/streams", json={"name": "sec"}, headers=good)
            consumer = {"name": "sec-c", "filter_key_pattern": ">"}
            await http.post(f"{server.url}/api/streams/sec/consumers", json=consumer, headers=good)
            routes = [
                (route.method, _path(str(info.get("path") or info.get("formatter"))))
                for route in server.app.router.routes()
                if route.resource is not None
                and not isinstance(route.resource, web.StaticResource)  # the dashboard's files
                for info in [route.resource.get_info()]
            ]
            routes.append(("GET", "/no/such/route"))
            checked = 0
            for method, path in routes:
                url = server.url + path
                if ("get", path) in dashboard.PAGES:
                    continue  # static files, no data (tests/server/test_dashboard.py)
                if path == "/health":
                    for headers in BAD_AUTH:
                        assert (await _status(http, method, url, headers))[0] == 200
                    continue
                for headers in BAD_AUTH:
                    status, payload, challenge = await _status(http, method, url, headers)
                    assert status == 401, (method, path, headers, status)
                    if method != "HEAD":
                        assert payload is not None and payload["summary"].startswith(
                            "Unauthorized"
                        ), payload
                    assert challenge == "Bearer"
                    checked += 1
                status, _, _ = await _status(http, method, url, good)
                assert status != 401, (method, path)  # (after a DELETE: 404, not 401)
    record_property("figures", {"routes": len(routes), "rejections_checked": checked})


def test_auth_uses_a_constant_time_compare() -> None:
    source = inspect.getsource(server_app._auth_middleware)
    assert "hmac.compare_digest(" in source
    assert "== expected" not in source and "expected ==" not in source
    assert "!= expected" not in source and "expected !=" not in source


# -- body size -------------------------------------------------------------------


async def test_body_over_the_limit_is_413(tmp_path: Path) -> None:
    limit = 64 * 1024
    async with (
        run_server(tmp_path / "limit.db", max_body_bytes=limit) as server,
        streamkit.connect(server.url) as client,
    ):
        await client.create_stream("big")
        with pytest.raises(streamkit.PayloadTooLarge) as caught:
            await client.send("big", [Event("x" * (limit + 1))])
        assert caught.value.status == 413 and "too large" in caught.value.summary
        await client.send("big", [Event("x" * (limit // 2))])  # under it: fine
        event = Event("y" * (limit * 2))
        await client.publish("big", event)
        with pytest.raises(streamkit.Nack) as nacked:
            await event.wait_for_ack(timeout=10)
        assert nacked.value.code == "too_large"
        assert (await client.get_stream("big")).message_count == 1


# -- long-poll caps ----------------------------------------------------------------


@pytest.fixture
async def capped(tmp_path: Path) -> AsyncIterator[ServerHandle]:
    async with run_server(tmp_path / "caps.db", max_long_polls=30, max_wait_ms=10_000) as server:
        async with aiohttp.ClientSession() as http:
            await http.post(f"{server.url}/api/streams", json={"name": "lp"})
            for name in ("c1", "c2"):
                body = {"name": name, "filter_key_pattern": ">"}
                await http.post(f"{server.url}/api/streams/lp/consumers", json=body)
        yield server


async def _receive(
    http: aiohttp.ClientSession, url: str, consumer: str, wait_ms: int
) -> tuple[int, dict[str, Any], str | None]:
    params = {"batch_size": 1, "wait_for": wait_ms}
    async with http.get(f"{url}/api/streams/lp/consumers/{consumer}/receive", params=params) as r:
        return r.status, await r.json(), r.headers.get("Retry-After")


async def _wait_for_waiting(server: ServerHandle, total: int) -> None:
    polls = server.app[LONG_POLLS]
    for _ in range(400):  # bounded: 2 s
        if polls.total >= total:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"only {polls.total} long-polls waiting, expected {total}")


async def test_max_waiting_per_consumer_is_enforced(
    capped: ServerHandle, record_property: Callable[[str, object], None]
) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        async with http.get(f"{capped.url}/api/streams/lp/consumers/c1") as r:
            max_waiting = (await r.json())["max_waiting"]
        assert max_waiting == 20
        holders = [
            asyncio.create_task(_receive(http, capped.url, "c1", 2500)) for _ in range(max_waiting)
        ]
        await _wait_for_waiting(capped, max_waiting)
        status, body, retry_after = await _receive(http, capped.url, "c1", 2500)
        assert status == 429 and retry_after == "1", body
        assert "max_waiting" in body["summary"] and body["code"] == "too_many_waiting"
        assert (await _receive(http, capped.url, "c1", 0))[0] == 200  # not waiting: not capped
        other = asyncio.create_task(_receive(http, capped.url, "c2", 100))  # another consumer
        assert (await other)[0] == 200
        results = await asyncio.gather(*holders)
        assert [s for s, _, _ in results] == [200] * max_waiting
        assert capped.app[LONG_POLLS].total == 0
        assert (await _receive(http, capped.url, "c1", 10))[0] == 200  # slots are back
    record_property("figures", {"max_waiting": max_waiting, "refused_status": status})


async def test_global_long_poll_cap(capped: ServerHandle) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        reads = [
            asyncio.create_task(http.get(f"{capped.url}/api/streams/lp/messages?wait_for=2500"))
            for _ in range(15)
        ]
        receives = [
            asyncio.create_task(_receive(http, capped.url, f"c{1 + i % 2}", 2500))
            for i in range(15)
        ]
        await _wait_for_waiting(capped, 30)
        status, body, retry_after = await _receive(http, capped.url, "c2", 2500)
        assert status == 429 and retry_after == "1", body
        async with http.get(f"{capped.url}/api/streams/lp/messages?wait_for=100") as r:
            assert r.status == 429
        async with http.get(f"{capped.url}/api/streams/lp/messages") as r:
            assert r.status == 200  # a read that does not wait is never refused
        for response in await asyncio.gather(*reads):
            assert response.status == 200
            response.release()
        assert [s for s, _, _ in await asyncio.gather(*receives)] == [200] * 15


async def test_long_poll_flags_of_serve(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "flags.db", extra=["--max-waiting", "2"])
    await server.astart()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
            await http.post(f"{server.url}/api/streams", json={"name": "lp"})
            body = {"name": "c1", "filter_key_pattern": ">"}
            async with http.post(f"{server.url}/api/streams/lp/consumers", json=body) as r:
                assert (await r.json())["max_waiting"] == 2
            holders = [asyncio.create_task(_receive(http, server.url, "c1", 2000)) for _ in "ab"]
            await asyncio.sleep(0.3)
            assert (await _receive(http, server.url, "c1", 2000))[0] == 429
            assert [s for s, _, _ in await asyncio.gather(*holders)] == [200, 200]
    finally:
        server.stop()


# -- TLS ---------------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cryptography if installed, else openssl)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        _with_cryptography(cert, key)
        return cert, key
    except ImportError:
        pass
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("neither the cryptography package nor the openssl CLI is available")
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


def _with_cryptography(cert_path: Path, key_path: Path) -> None:
    import datetime
    import ipaddress

    from cryptography import x509  # type: ignore[import-not-found,unused-ignore]
    from cryptography.hazmat.primitives import (  # type: ignore[import-not-found,unused-ignore]
        hashes,
        serialization,
    )
    from cryptography.hazmat.primitives.asymmetric import ec  # type: ignore[import-not-found,unused-ignore]
    from cryptography.x509.oid import NameOID  # type: ignore[import-not-found,unused-ignore]

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _self_signed(tmp_path_factory.mktemp("tls"))


async def test_tls_in_process_with_the_client(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    trust = ssl.create_default_context(cafile=str(cert))
    async with run_server(ssl_context=tls_context(str(cert), str(key))) as server:
        assert server.url.startswith("https://")
        async with streamkit.connect(server.url, ssl=trust) as client:
            assert (await client.ping())["ok"] is True
            await client.create_stream("tls")
            await client.create_consumer("tls", "c", ">")
            await client.publish("tls", Event({"n": 1}))
            await client.flush(timeout=10)
            (event,) = await client.receive("tls", "c", wait_for=1.0)
            assert event.data == {"n": 1}
        # Without trusting the certificate, the default verification refuses it.
        async with streamkit.connect(server.url, retries=0) as untrusting:
            with pytest.raises(streamkit.ConnectError):
                await untrusting.ping()
        # Plain HTTP to the TLS port gets nowhere.
        plain = server.url.replace("https://", "http://")
        async with streamkit.connect(plain, retries=0, timeout=3.0) as confused:
            with pytest.raises(streamkit.TransportError):
                await confused.ping()


async def test_tls_flags_of_serve(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server = ServerProcess(
        tmp_path / "tls.db", extra=["--cert", str(cert), "--key", str(key)], tls=True
    )
    await server.astart()
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        async with streamkit.connect(server.url, ssl=trust) as client:
            assert (await client.ping())["ok"] is True
    finally:
        server.stop()
    bad = ServerProcess(tmp_path / "tls2.db", extra=["--key", str(key)])
    bad.spawn()
    assert bad.proc is not None
    assert bad.proc.wait(timeout=15) == 1  # --key without --cert: a clear startup error
    assert "--key needs --cert" in bad.log_text()
