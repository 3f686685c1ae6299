"""Benchmarks: ``python -m benchmarks [--quick] [--only NAME]`` (what ``make bench`` runs).

- `harness` starts the servers (an embedded streamkit server, ``nats-server -js`` and
  ``redis-server`` when installed, each a subprocess on a free loopback port with a
  temporary store), prints the tables and writes ``benchmarks/results/latest.json``.
- `scenarios` is the registry: one entry per scenario module (`publish`, `consume`,
  `jetstream`, `scaling`). To add one, write ``benchmarks/<name>.py`` with
  ``async def run(ctx: Context) -> list[Measurement]`` and list it in ``SCENARIOS``.
- `redis_streams` is the Redis Streams peer; `plot` draws the scaling curves to
  ``benchmarks/results/latest.png``; `readme` prints a run as the README's tables.
- `stages` (``python -m benchmarks.stages``) is not a scenario: it times each stage of
  publish and receive+ack in one process, in CPU µs per event, to find the costs.
- Numbers are measured against peers in the same run and reported as ratios;
  nothing here is asserted by the test suite.
"""
