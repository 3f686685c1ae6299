"""The server process's garbage collector: collect young objects less often.

Every receive builds a few objects per message (its dict, the delivery around
it, the ack id) and every request a few hundred more; with CPython's default
first-generation threshold of 700 allocations a batch of 1000 deliveries sets
off a dozen collections, each also walking whatever the last ones promoted. The
server's hot objects are short-lived and acyclic (reference counting frees
them), so collecting after `YOUNG_THRESHOLD` allocations instead cuts the
consume path's server CPU by about a quarter (measured) at the cost of cyclic
garbage living a little longer. Objects alive at start-up (modules, the app)
are frozen out of the collector's walks altogether.

Only `streamkit serve` / ``python -m streamkit.server`` call `tune_gc`: a server
embedded in another program (tests, the pytest plugin) leaves that program's
collector alone.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Allocations (net of frees) between collections of the youngest generation."""


def tune_gc() -> None:
    """Raise the youngest generation's threshold and freeze what exists now."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    gc.freeze()
