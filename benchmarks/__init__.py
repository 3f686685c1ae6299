"""Benchmarks: ``python -m benchmarks [--quick] [--only NAME]`` (what ``make bench`` runs).

- `harness` starts the servers (an embedded streamkit server and ``nats-server -js``,
  each a subprocess on a free loopback port with a temporary store), runs the
  scenarios, prints a table and writes ``benchmarks/results/latest.json``.
- `scenarios` is the registry: one entry per scenario module. To add one, write
  ``benchmarks/<name>.py`` with ``async def run(ctx: Context) -> list[Measurement]``
  and list it in ``SCENARIOS``.
- Numbers are measured against peers in the same run and reported as ratios;
  nothing here is asserted by the test suite.
"""
