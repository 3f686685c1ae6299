"""Draw the scaling curves of a run as one PNG (matplotlib, Agg backend: no display needed).

``python -m benchmarks.plot [results/latest.json] [--out results/latest.png]``
redraws a saved run; `python -m benchmarks` calls `draw` after each run.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import RESULTS_DIR, Measurement, curves

LOG_X = ("batch size", "payload")
"""Figures whose x axis is logarithmic (matched against their title)."""
LOG_Y = ("payload",)
"""Figures whose y axis is logarithmic: rates that span orders of magnitude."""
MAX_TICKS = 8
"""Figures with more points than this keep matplotlib's own x ticks."""


def draw(measurements: Sequence[Measurement], path: Path, subtitle: str = "") -> bool:
    """Write one panel per figure to ``path``; False (nothing written) without curves
    or without matplotlib."""
    figures = curves(measurements)
    if not figures:
        return False
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator

    fig, axes = plt.subplots(1, len(figures), figsize=(5.2 * len(figures), 4.4), squeeze=False)
    for ax, (title, lines) in zip(axes[0], figures.items(), strict=True):
        for line, points in lines.items():
            ax.plot([p.x for p in points], [p.value for p in points], marker="o", label=line)
        ax.set_title(title, fontsize=10)
        if any(word in title for word in LOG_X):
            ax.set_xscale("log", base=2 if "payload" in title else 10)
        xs = sorted({p.x or 0.0 for points in lines.values() for p in points})
        if len(xs) <= MAX_TICKS:  # else matplotlib's own ticks
            ax.set_xticks(xs)
            ax.set_xticklabels([_label(x, title) for x in xs])
        if any(word in title for word in LOG_Y):
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        else:
            ax.set_ylim(bottom=0)
        ax.minorticks_off()
        unit = next(iter(lines.values()))[0].unit
        if unit == "events/s":
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k"))
        ax.set_ylabel(unit)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=9)
    if subtitle:
        fig.suptitle(subtitle, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _label(x: float, title: str) -> str:
    if "payload" in title:
        return f"{x / 1024:g} KB" if x >= 1024 else f"{x:g} B"
    return f"{x:g}"


def subtitle_of(report: dict[str, Any]) -> str:
    """A one-line description of the machine and run a report JSON came from."""
    mode = "quick run" if report.get("quick") else "full run"
    return (
        f"{report.get('started', '')} · {mode} · {report.get('cpus')} CPUs "
        f"({report.get('cpu_model', '?')}) · Python {report.get('python')}"
    )


def main(argv: list[str] | None = None) -> None:
    """Redraw the PNG of a saved run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plot", description=__doc__)
    parser.add_argument("json", nargs="?", type=Path, default=RESULTS_DIR / "latest.json")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "latest.png")
    args = parser.parse_args(argv)
    report = json.loads(args.json.read_text())
    measurements = [Measurement(**m) for m in report["measurements"]]
    if draw(measurements, args.out, subtitle_of(report)):
        print(f"wrote {args.out}")
    else:
        print("nothing drawn: no curves in the report, or matplotlib is not installed")


if __name__ == "__main__":
    main()
