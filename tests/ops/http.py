"""A blocking JSON caller for tests that drive a server subprocess step by step."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def call(
    url: str, method: str, path: str, body: Any = None, *, timeout: float = 30
) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON body) of one request; error statuses are returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        assert exc.headers.get_content_type() == "application/json", raw[:200]
        return exc.code, dict(exc.headers), json.loads(raw)


def all_messages(url: str, stream: str) -> list[dict[str, Any]]:
    """Every stored message of ``stream``, by seq (pages of 1000, at most 1000 pages)."""
    out: list[dict[str, Any]] = []
    after = 0
    for _ in range(1000):
        status, _, body = call(
            url, "GET", f"/api/streams/{stream}/messages?limit=1000&after_seq={after}"
        )
        assert status == 200, body
        page = body["data"]
        if not page:
            return out
        out += page
        after = page[-1]["seq"]
    raise AssertionError("more than 1M messages")
