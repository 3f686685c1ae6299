"""What the ``streamkit`` command draws with rich (the ``[cli]`` extra): the tables of
``stats``, ``streams list`` and ``consumers list``, and ``publish``'s progress bar.

The tables are built from the same dicts the ``--json`` outputs print, so the two
say the same things; `streamkit.cli.commands` imports this module only when it draws.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = ["consumer_stats_table", "consumers_table", "publish_progress", "show", "streams_table"]


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def streams_table(streams: list[dict[str, Any]]) -> Table:
    """Streams (as ``streams list --json`` prints them) with their counts."""
    table = Table(title="Streams", title_justify="left")
    table.add_column("Stream", style="bold", no_wrap=True)
    table.add_column("Messages", justify="right")
    table.add_column("Consumers", justify="right")
    table.add_column("Storage", justify="right")
    table.add_column("Created")
    for s in streams:
        table.add_row(
            s["name"],
            f"{s['message_count']:,}",
            f"{s['consumer_count']:,}",
            _size(s["storage_size"]),
            _when(s["inserted_at"]),
        )
    return table


def consumer_stats_table(consumers: list[tuple[str, dict[str, Any]]]) -> Table:
    """Consumers of several streams, as (stream name, consumer JSON), with their stats."""
    table = Table(title="Consumers", title_justify="left")
    table.add_column("Stream", no_wrap=True)
    table.add_column("Consumer", style="bold", no_wrap=True)
    table.add_column("Filter")
    table.add_column("Pending", justify="right")
    table.add_column("In flight", justify="right")
    table.add_column("Dead", justify="right")
    table.add_column("Kind")
    for stream, c in consumers:
        table.add_row(
            stream,
            c["name"],
            c["filter_key_pattern"],
            f"{c['pending']:,}",
            f"{c['in_flight']:,}",
            f"{c['dead']:,}",
            c["kind"],
        )
    return table


def consumers_table(stream: str, consumers: list[dict[str, Any]]) -> Table:
    """One stream's consumers (as ``consumers list --json`` prints them) and their settings."""
    table = Table(title=f"Consumers of {stream}", title_justify="left")
    table.add_column("Consumer", style="bold", no_wrap=True)
    table.add_column("Filter")
    table.add_column("Ack wait", justify="right")
    table.add_column("Max deliver", justify="right")
    table.add_column("Kind")
    for c in consumers:
        max_deliver = "-" if c["max_deliver"] is None else str(c["max_deliver"])
        table.add_row(
            c["name"],
            c["filter_key_pattern"],
            f"{c['ack_wait_ms'] / 1000:g}s",
            max_deliver,
            c["kind"],
        )
    return table


def show(*tables: Table) -> None:
    """Print tables to stdout."""
    console = Console()
    for table in tables:
        console.print(table)


def publish_progress() -> Progress:
    """``publish``'s progress bar on stderr, drawn only when stderr is a terminal."""
    console = Console(stderr=True)
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[acked]:,} stored"),
        TextColumn("{task.fields[rate]:,.0f} events/s"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )
