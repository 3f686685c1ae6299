"""The process's open-file limit: raised to the most allowed at start, and read to size the cap.

Every connection is a file descriptor. Many systems start processes with a
soft ``RLIMIT_NOFILE`` of 1024 and a far higher hard limit that an
unprivileged process may raise its soft limit to; `raise_open_file_limit`
does that once, at start. `connections_allowed` is how many connections fit
under the limit with room kept for the database, logs and refusals.
"""

from __future__ import annotations

import logging

try:
    import resource
except ImportError:  # pragma: no cover - Windows has no rlimits
    resource = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

RESERVED_FILES = 64
"""Descriptors kept free of connections: the database and its WAL, logs, NATS, refusals."""

_UNLIMITED_TARGET = 1 << 20
"""The soft limit asked for when the hard limit is "unlimited" (Linux's default nr_open)."""


def open_file_limit() -> int | None:
    """The soft ``RLIMIT_NOFILE`` now, or None where there is none (or it is unlimited)."""
    if resource is None:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def raise_open_file_limit() -> tuple[int, int] | None:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit and log it.

    Returns ``(before, after)``, or None when there is nothing to raise.
    """
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return None
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:  # e.g. macOS caps it below the hard limit
        log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
        return None
    log.info("raised the open-file limit (nofile) from %d to %d", soft, target)
    return soft, target


def connections_allowed(max_connections: int) -> int:
    """``max_connections``, lowered (with a warning) to what the open-file limit allows."""
    limit = open_file_limit()
    if limit is None:
        return max_connections
    allowed = max(1, limit - RESERVED_FILES)
    if max_connections > allowed:
        log.warning(
            "max connections lowered from %d to %d to fit the open-file limit (nofile %d)",
            max_connections,
            allowed,
            limit,
        )
        return allowed
    return max_connections
