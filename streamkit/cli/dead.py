"""``streamkit dead list|redrive|discard STREAM CONSUMER``: a consumer's dead letters."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from streamkit.cli.formats import render_event
from streamkit.client import AsyncClient


async def dead_list(client: AsyncClient, args: argparse.Namespace) -> int:
    """Print each dead letter as a JSON line: the event as `tail` prints it, plus its
    ``delivery_count`` and ``last_error`` (null when the engine keeps none)."""
    printed = 0
    async for dead in client.dead_letters(args.stream, args.consumer):
        line: dict[str, Any] = orjson.loads(render_event(dead.event))
        line["delivery_count"] = dead.delivery_count
        line["last_error"] = dead.last_error
        print(orjson.dumps(line).decode("utf-8"))
        printed += 1
        if args.limit is not None and printed >= args.limit:
            break
    return 0


async def dead_redrive(client: AsyncClient, args: argparse.Namespace) -> int:
    """Deliver the dead letters ``--seq`` (default: all) again; print how many."""
    count = await client.redrive(args.stream, args.consumer, args.seqs)
    print(f"redriven: {count}")
    return 0


async def dead_discard(client: AsyncClient, args: argparse.Namespace) -> int:
    """Forget the dead letters ``--seq`` (or all, with ``--all``); print how many."""
    count = await client.discard_dead(args.stream, args.consumer, None if args.all else args.seqs)
    print(f"discarded: {count}")
    return 0
