"""``python -m benchmarks.readme [results/latest.json]``: a saved run as Markdown tables.

Prints what the README's Benchmarks section shows: the measurements, then one
table per scaling figure, so the README is refreshed from a real run by
pasting, never by hand.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from benchmarks.harness import RESULTS_DIR, Measurement, curves, format_value


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(measurements: list[Measurement]) -> str:
    """The measurements table and the curve tables, in Markdown."""
    lines = ["| scenario | measurement | value | unit | note |", "|---|---|--:|---|---|"]
    for m in measurements:
        if m.figure:
            continue
        value = "—" if math.isnan(m.value) else format_value(m)
        name = "↳ " + m.name.strip() if m.name.startswith(" ") else m.name  # a detail row
        cells = (m.scenario, name, value, m.unit, m.note)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    for figure, series in curves(measurements).items():
        xs = sorted({p.x or 0.0 for points in series.values() for p in points})
        values = {(line, p.x): p for line, points in series.items() for p in points}
        unit = next(p.unit for points in series.values() for p in points)
        title = figure if unit in figure else f"{figure}, {unit}"
        lines += ["", f"{title}:", ""]
        lines.append("| x | " + " | ".join(series) + " |")
        lines.append("|--:|" + "--:|" * len(series))
        for x in xs:
            row = [format_value(values[line, x]) if (line, x) in values else "" for line in series]
            lines.append(f"| {x:g} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the Markdown of a saved run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.readme", description=__doc__)
    parser.add_argument("json", nargs="?", type=Path, default=RESULTS_DIR / "latest.json")
    args = parser.parse_args(argv)
    report = json.loads(args.json.read_text())
    print(markdown([Measurement(**m) for m in report["measurements"]]))


if __name__ == "__main__":
    main()
