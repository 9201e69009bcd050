"""The subpackages of adk import each other in one direction only (no cycles).

Every import counts, including those inside functions and under
``TYPE_CHECKING``: a type-only import is still a dependency of the design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import adk

# Lowest first; a module may import only from its own layer or lower ones.
LAYERS = [
    {"errors", "messages", "events", "_streams", "_lazy", "content"},
    {"models"},
    {"serving"},
    {"state"},
    {"sessions"},
    {"tools"},
    {"agents"},
    {"tracing"},
    {"runner"},
    {"mcp", "evals"},
    {"service"},
    {"console"},
    {"cli", "__main__"},
    {"__init__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
ROOT = Path(adk.__file__).parent


def _unit(path: Path) -> str:
    """The subpackage (or top-level module) a file belongs to."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "adk" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_unit_has_a_layer() -> None:
    units = {_unit(path) for path in ROOT.rglob("*.py")}
    assert units <= set(RANK), f"give these a layer: {sorted(units - set(RANK))}"


def test_imports_only_go_down() -> None:
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        unit = _unit(path)
        for target in _imports(path):
            if target in RANK and RANK[target] > RANK[unit]:
                upward.append(f"{path.relative_to(ROOT)} imports adk.{target}")
    assert not upward, "imports against the layering:\n" + "\n".join(upward)
