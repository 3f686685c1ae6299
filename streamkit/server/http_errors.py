"""Errors answered below the app: HTTP that does not parse, and answers written on a bare socket.

aiohttp's parser rejects a request before any route or middleware runs, and
by default answers with a plain-text 400 that quotes the offending input.
`parse_error` turns the parser's exception into the API's JSON error body
with the status that names the problem (414, 431 or 400) and never quotes
the input. `raw_response` is the same body as the bytes of a whole HTTP/1.1
response, for a connection the server answers without parsing a request
(past the connection cap, or when the request head is too slow).
"""

from __future__ import annotations

from http import HTTPStatus

import orjson
from aiohttp import http_exceptions

from streamkit.server.responses import ErrorResponse

MAX_URL_BYTES = 8192
"""Longest request target (path and query) the parser accepts; longer is 414."""

MAX_HEADER_BYTES = 8190
"""Longest header (name and value) the parser accepts; longer is 431.

Deliberately not equal to `MAX_URL_BYTES`: aiohttp's ``LineTooLong`` says
only which limit it crossed, and the limit is how we tell a URL from a header.
"""

BAD_REQUEST = "bad_request"
"""The ``code`` of every error answered for HTTP that does not parse."""


def parse_error(exc: BaseException | None) -> ErrorResponse:
    """The JSON error for a request aiohttp's parser rejected; nothing of the input is quoted."""
    if isinstance(exc, http_exceptions.LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else None
        if limit == MAX_URL_BYTES:
            return ErrorResponse(
                414, f"URI too long: the request target is over {MAX_URL_BYTES} bytes", BAD_REQUEST
            )
        return ErrorResponse(
            431,
            f"Request header fields too large: a header is over {MAX_HEADER_BYTES} bytes",
            BAD_REQUEST,
        )
    if isinstance(exc, http_exceptions.BadHttpMessage) and "Too many headers" in str(exc):
        return ErrorResponse(
            431,
            "Request header fields too large: too many headers",
            BAD_REQUEST,
        )
    return ErrorResponse(400, f"Bad request: {_what(exc)}", BAD_REQUEST)


def _what(exc: BaseException | None) -> str:
    if isinstance(exc, http_exceptions.BadHttpMethod):
        return "the request method is not a valid HTTP method"
    if isinstance(exc, http_exceptions.BadStatusLine):
        return "the request line is not valid HTTP/1.x"
    if isinstance(exc, http_exceptions.InvalidURLError):
        return "the request target is not a valid URL"
    if isinstance(exc, http_exceptions.InvalidHeader):
        return "a header is not valid"
    if isinstance(exc, http_exceptions.PayloadEncodingError):
        return "the body's framing (Content-Length or Transfer-Encoding) is not valid"
    return "the request is not valid HTTP/1.1"


def raw_response(error: ErrorResponse) -> bytes:
    """``error`` as a complete HTTP/1.1 response that closes the connection."""
    body = orjson.dumps({"summary": error.summary, "code": error.code, **error.extra})
    lines = [
        f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in (error.headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
