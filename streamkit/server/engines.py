"""Choosing a storage engine: ``create_store("sqlite" | "jetstream", ...)``.

The CLI (``streamkit serve --engine ... --nats ...``) and embedders call
`create_store`; the returned store is opened by the app
(`start_server`). Engine modules are imported
here lazily, so the SQLite server runs without nats-py installed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from streamkit.server.store.base import DEFAULT_DEDUPE_WINDOW_MS, Store

ENGINES = ("sqlite", "jetstream")
"""Names accepted by `create_store` (and ``--engine``)."""

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


class EngineError(ValueError):
    """The engine name or its options are unusable (a startup error, not a bug)."""


def default_engine() -> str:
    """``$STREAMKIT_ENGINE`` or ``"sqlite"``."""
    return os.environ.get("STREAMKIT_ENGINE") or "sqlite"


def default_nats_urls() -> str:
    """``$STREAMKIT_NATS_URL`` (comma-separated for a cluster) or the local default."""
    return os.environ.get("STREAMKIT_NATS_URL") or DEFAULT_NATS_URL


def create_store(
    engine: str,
    *,
    db: str | Path = "streamkit.db",
    synchronous: Literal["normal", "full"] = "normal",
    nats_urls: str | Sequence[str] | None = None,
    nats_prefix: str = "streamkit",
    replicas: int = 1,
    dedupe_window_ms: int = DEFAULT_DEDUPE_WINDOW_MS,
    dedupe_max_ids: int | None = None,
) -> Store:
    """Build (not open) the store for ``engine``.

    ``db``/``synchronous`` apply to ``sqlite``; ``nats_urls`` (a list, or one
    string with comma-separated URLs; default ``$STREAMKIT_NATS_URL``),
    ``nats_prefix`` and ``replicas`` to ``jetstream``. Raises
    `EngineError` for an unknown engine, bad options, or a missing
    ``[jetstream]`` extra. ``dedupe_window_ms`` applies to both engines;
    ``dedupe_max_ids`` (the most ids the SQLite engine remembers) to ``sqlite``.
    """
    name = engine.strip().lower()
    if name == "sqlite":
        from streamkit.server.store.sqlite.dedupe import DEFAULT_MAX_IDS
        from streamkit.server.store.sqlite.store import SqliteStore

        return SqliteStore(
            db,
            synchronous=synchronous,
            dedupe_window_ms=dedupe_window_ms,
            dedupe_max_ids=DEFAULT_MAX_IDS if dedupe_max_ids is None else dedupe_max_ids,
        )
    if name == "jetstream":
        try:
            from streamkit.server.store.jetstream.store import JetStreamStore
        except ImportError as exc:
            raise EngineError(
                f"the jetstream engine needs nats-py: pip install 'aiostreamkit[jetstream]' ({exc})"
            ) from None
        try:
            return JetStreamStore(
                nats_urls if nats_urls is not None else default_nats_urls(),
                prefix=nats_prefix,
                replicas=replicas,
                dedupe_window_ms=dedupe_window_ms,
            )
        except ValueError as exc:
            raise EngineError(str(exc)) from None
    raise EngineError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
