"""The library logs through ``logging`` and never prints."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "streamkit"
CLI = PACKAGE / "cli"
"""The ``streamkit`` command: a program, not library code; it owns the terminal."""


def library_modules() -> list[Path]:
    return sorted(
        p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py" and CLI not in p.parents
    )


@pytest.mark.parametrize("path", library_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_print_or_direct_stdio(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "print", f"{path.name}:{node.lineno} prints"
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("stdout", "stderr")
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        ):
            raise AssertionError(f"{path.name}:{node.lineno} writes to sys.{node.attr}")


NEW_MODULES = [
    "reads/tail.py",
    "server/sse.py",
    "server/metrics.py",
    "server/app.py",
    "_http/transport.py",
]


@pytest.mark.parametrize("name", NEW_MODULES)
def test_module_loggers_are_named_after_the_module(name: str) -> None:
    tree = ast.parse((PACKAGE / name).read_text())
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "getLogger"
    ]
    for call in calls:
        assert [ast.unparse(a) for a in call.args] == ["__name__"]
