"""Reading a stream without a consumer: catch-up `get`/`iter` and the live `tail`; and
a consumer's dead letters."""

from streamkit.reads.catchup import BACKWARD, FORWARD, Direction, get, iterate
from streamkit.reads.dead_letters import DeadLetter, iterate_dead
from streamkit.reads.tail import tail

__all__ = [
    "BACKWARD",
    "FORWARD",
    "DeadLetter",
    "Direction",
    "get",
    "iterate",
    "iterate_dead",
    "tail",
]
