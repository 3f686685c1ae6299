"""streamkit: an asyncio-first client for durable event streams.

```python
async with streamkit.connect() as client:
    await client.publish("orders", Event({"id": 7}, key="orders.eu.7"))
    async for event in client.subscribe("orders", consumer="billing"):
        await event.ack()
```

The public names below are resolved on first use (PEP 562), so importing a
part of the package (the server, the command line) loads only what it needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamkit.client import AsyncClient, connect
    from streamkit.errors import (
        APIError,
        BadRequest,
        ClientClosed,
        Conflict,
        ConnectError,
        DecodeError,
        GatewayError,
        InvalidURL,
        Nack,
        NotFound,
        Overloaded,
        PayloadTooLarge,
        QueueFull,
        ServerError,
        StorageFull,
        StreamkitError,
        TimeoutError,
        TransportError,
        Unauthorized,
        ValidationError,
    )
    from streamkit.models import Ack, Consumer, Event, Stream
    from streamkit.publisher import Publisher, PublisherConfig
    from streamkit.reads import BACKWARD, FORWARD, DeadLetter, Direction
    from streamkit.subscriber import Subscription

__version__ = "0.1.0"

_WHERE: dict[str, str] = {
    "AsyncClient": "streamkit.client",
    "connect": "streamkit.client",
    **dict.fromkeys(
        (
            "APIError",
            "BadRequest",
            "ClientClosed",
            "Conflict",
            "ConnectError",
            "DecodeError",
            "GatewayError",
            "InvalidURL",
            "Nack",
            "NotFound",
            "Overloaded",
            "PayloadTooLarge",
            "QueueFull",
            "ServerError",
            "StorageFull",
            "StreamkitError",
            "TimeoutError",
            "TransportError",
            "Unauthorized",
            "ValidationError",
        ),
        "streamkit.errors",
    ),
    **dict.fromkeys(("Ack", "Consumer", "Event", "Stream"), "streamkit.models"),
    **dict.fromkeys(("Publisher", "PublisherConfig"), "streamkit.publisher"),
    **dict.fromkeys(("BACKWARD", "FORWARD", "DeadLetter", "Direction"), "streamkit.reads"),
    "Subscription": "streamkit.subscriber",
}
"""Public name -> the module that defines it."""

__all__ = [
    "BACKWARD",
    "FORWARD",
    "APIError",
    "Ack",
    "AsyncClient",
    "BadRequest",
    "ClientClosed",
    "Conflict",
    "ConnectError",
    "Consumer",
    "DeadLetter",
    "DecodeError",
    "Direction",
    "Event",
    "GatewayError",
    "InvalidURL",
    "Nack",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "Publisher",
    "PublisherConfig",
    "QueueFull",
    "ServerError",
    "StorageFull",
    "Stream",
    "StreamkitError",
    "Subscription",
    "TimeoutError",
    "TransportError",
    "Unauthorized",
    "ValidationError",
    "__version__",
    "connect",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'streamkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found once; later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
