"""The ``streamkit`` command. For now: ``streamkit serve``."""

from __future__ import annotations

import argparse

from streamkit.server import serve


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``streamkit`` console script."""
    parser = argparse.ArgumentParser(prog="streamkit", description="streamkit event streams")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = commands.add_parser("serve", help="run the streamkit server")
    serve.add_arguments(serve_parser)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve.run(args)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover


if __name__ == "__main__":
    raise SystemExit(main())
