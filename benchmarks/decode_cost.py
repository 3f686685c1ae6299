"""``python -m benchmarks.decode_cost [--count N] [--rounds R]``: what a model costs per
received event.

Builds N wire messages (an order with three lines, as a ``receive`` or read
response holds them once its body is parsed) and times, per event, in-process
and with no server (the cost is the client's alone):

- ``no model``: ``Event.from_wire`` (it parses the JSON data into ``event.data``);
- ``<kind>``: ``Event.from_wire`` and then ``event.decode(Order)``, for a pydantic
  model, a msgspec Struct, a dataclass and an attrs class of the same shape.

Each figure is the median of R rounds of N events; ``+decode`` is the model's
part (that row minus ``no model``). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import attrs
import msgspec
import pydantic

from streamkit import Event
from streamkit.models import dumps


class PydanticLine(pydantic.BaseModel):
    sku: str
    qty: int
    price: float


class PydanticOrder(pydantic.BaseModel):
    id: int
    customer: str
    total: float
    lines: list[PydanticLine]


class MsgspecLine(msgspec.Struct):
    sku: str
    qty: int
    price: float


class MsgspecOrder(msgspec.Struct):
    id: int
    customer: str
    total: float
    lines: list[MsgspecLine]


@dataclasses.dataclass
class DataclassLine:
    sku: str
    qty: int
    price: float


@dataclasses.dataclass
class DataclassOrder:
    id: int
    customer: str
    total: float
    lines: list[DataclassLine]


@attrs.define
class AttrsLine:
    sku: str
    qty: int
    price: float


@attrs.define
class AttrsOrder:
    id: int
    customer: str
    total: float
    lines: list[AttrsLine]


MODELS: dict[str, type[Any]] = {
    "pydantic": PydanticOrder,
    "msgspec": MsgspecOrder,
    "dataclass": DataclassOrder,
    "attrs": AttrsOrder,
}


def wire_messages(count: int) -> list[dict[str, Any]]:
    """``count`` received message objects, each an order as JSON text."""
    messages = []
    for i in range(count):
        order = {
            "id": i,
            "customer": f"customer-{i % 97}",
            "total": 3 * 4.25,
            "lines": [{"sku": f"sku-{i}-{n}", "qty": n + 1, "price": 4.25} for n in range(3)],
        }
        messages.append(
            {
                "key": "orders.eu",
                "data": dumps(order).decode(),
                "seq": i + 1,
                "id": f"id-{i}",
                "stream_id": "s",
                "inserted_at": "2026-01-01T00:00:00Z",
                "headers": {"content-type": "application/json"},
            }
        )
    return messages


def per_event_us(run: Callable[[], None], count: int, rounds: int) -> float:
    """Median over ``rounds`` of one ``run()`` (``count`` events), in µs per event."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) / count * 1e6


def measure(count: int, rounds: int) -> dict[str, float]:
    """µs per event: ``no model`` and one entry per kind of model."""
    messages = wire_messages(count)
    from_wire = Event.from_wire

    def plain() -> None:
        for message in messages:
            from_wire(message, stream="orders")

    def typed(model: type[Any]) -> Callable[[], None]:
        def run() -> None:
            for message in messages:
                from_wire(message, stream="orders").decode(model)

        return run

    for model in MODELS.values():  # warm up: first-use caches, imports
        typed(model)()
    results = {"no model": per_event_us(plain, count, rounds)}
    for name, model in MODELS.items():
        results[name] = per_event_us(typed(model), count, rounds)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000, help="events per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the median is kept")
    args = parser.parse_args()
    if not (1 <= args.count <= 1_000_000 and 1 <= args.rounds <= 50):
        parser.error("--count must be 1..1000000 and --rounds 1..50")
    results = measure(args.count, args.rounds)
    base = results["no model"]
    print(f"{'':<12}{'µs/event':>10}{'+decode':>10}")
    for name, value in results.items():
        extra = "" if name == "no model" else f"{value - base:>10.2f}"
        print(f"{name:<12}{value:>10.2f}{extra}")
    print(json.dumps({"count": args.count, "rounds": args.rounds, "us_per_event": results}))


if __name__ == "__main__":
    main()
