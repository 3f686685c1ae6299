"""``python -m benchmarks [--quick] [--only NAME] [--out PATH] [--plot PATH]``.

Runs the scenarios against their peers in one invocation, prints the table and
the scaling curves, writes the JSON report and draws the curves as a PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import traceback
from pathlib import Path

from benchmarks import plot
from benchmarks.harness import (
    RESULTS_DIR,
    Measurement,
    Report,
    print_curves,
    print_table,
    servers,
)
from benchmarks.scenarios import SCENARIOS

SCENARIO_TIMEOUT = {False: 170.0, True: 55.0}
"""Seconds one scenario may take (full run, quick run)."""
LONGER_TIMEOUT = {"soak": {False: 1200.0, True: 150.0}}
"""Scenarios that run for longer by design, with their own limits."""


async def run(names: list[str], quick: bool) -> Report:
    """Start the servers, run the named scenarios in order, collect their measurements."""
    report = Report(quick=quick)
    async with servers(quick) as ctx:
        for name in names:
            try:
                limit = LONGER_TIMEOUT.get(name, SCENARIO_TIMEOUT)[quick]
                rows = await asyncio.wait_for(SCENARIOS[name](ctx), limit)
            except Exception as exc:
                traceback.print_exc()
                rows = [Measurement(name, "failed", math.nan, "", f"{type(exc).__name__}: {exc}")]
            report.measurements += rows
    return report


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 1 when a scenario failed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts, under two minutes")
    parser.add_argument(
        "--only", action="append", choices=sorted(SCENARIOS), help="run only this scenario"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "latest.json")
    parser.add_argument("--plot", type=Path, default=RESULTS_DIR / "latest.png")
    args = parser.parse_args(argv)
    report = asyncio.run(run(args.only or list(SCENARIOS), args.quick))
    print_table(report.measurements)
    print_curves(report.measurements)
    report.write(args.out)
    print(f"wrote {args.out}")
    if plot.draw(report.measurements, args.plot, plot.subtitle_of(report.to_json())):
        print(f"wrote {args.plot}")
    return 1 if any(m.name == "failed" for m in report.measurements) else 0


if __name__ == "__main__":
    sys.exit(main())
