"""Reading a stream without a consumer: catch-up `get`/`iter` and the live `tail`."""

from streamkit.reads.catchup import BACKWARD, FORWARD, Direction, get, iterate
from streamkit.reads.tail import tail

__all__ = ["BACKWARD", "FORWARD", "Direction", "get", "iterate", "tail"]
