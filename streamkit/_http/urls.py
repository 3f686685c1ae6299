"""Server URLs as users type them: checked once, before anything is sent."""

from __future__ import annotations

from urllib.parse import urlsplit

from streamkit.errors import InvalidURL

__all__ = ["server_url"]

SCHEMES = ("http", "https")


def server_url(url: str) -> str:
    """``url`` without a trailing slash; raises `InvalidURL` unless it is an
    ``http://`` or ``https://`` URL with a host (``localhost:7376`` is not: its
    "scheme" would be ``localhost``)."""
    try:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise ValueError("give the scheme and the host, as in http://localhost:7376")
        parts.port  # noqa: B018 - parses the port: one that is not a number raises
    except ValueError as exc:  # urlsplit's own, and parts.port for a port that is no number
        raise InvalidURL(f"invalid server URL {url!r}: {exc}") from None
    return url.rstrip("/")
