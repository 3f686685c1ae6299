"""The registry of benchmark scenarios, run in this order by ``python -m benchmarks``.

Each scenario is ``async def run(ctx: Context) -> list[Measurement]`` in its own
module. To add one, import its module here and add a line to `SCENARIOS`.
"""

from __future__ import annotations

from benchmarks import consume, jetstream, publish, scaling, soak
from benchmarks.harness import Scenario

SCENARIOS: dict[str, Scenario] = {
    "publish": publish.run,
    "consume": consume.run,
    "jetstream": jetstream.run,
    "scaling": scaling.run,
    "soak": soak.run,
}
