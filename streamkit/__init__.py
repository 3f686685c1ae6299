"""streamkit: an asyncio-first client for durable event streams.

```python
async with streamkit.connect() as client:
    await client.publish("orders", Event({"id": 7}, key="orders.eu.7"))
    async for event in client.subscribe("orders", consumer="billing"):
        await event.ack()
```
"""

from streamkit.client import AsyncClient, connect
from streamkit.errors import (
    APIError,
    BadRequest,
    ClientClosed,
    Conflict,
    ConnectError,
    DecodeError,
    Nack,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    QueueFull,
    ServerError,
    StreamkitError,
    TimeoutError,
    TransportError,
    Unauthorized,
    ValidationError,
)
from streamkit.models import Ack, Consumer, Event, Stream
from streamkit.publisher import Publisher, PublisherConfig
from streamkit.reader import BACKWARD, FORWARD, Direction
from streamkit.subscriber import Subscription

__version__ = "0.1.0"

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
    "DecodeError",
    "Direction",
    "Event",
    "Nack",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "Publisher",
    "PublisherConfig",
    "QueueFull",
    "ServerError",
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
