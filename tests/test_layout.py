"""The package's layout: every room imports only from its own floor or below, with no cycles.

The floors, from the ground up, are the README's "How the code is laid out". An import
that runs upward (say ``explain`` importing ``report``) or a cycle between rooms fails
here with the offending module and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from kit import ROOT

SRC = ROOT / "src" / "stratify"
#: Each room's floor: a room may import from rooms on its floor or below, never above.
FLOORS = {
    "": 0,  # the ground floor: exceptions, files, progress, formatting, rendering
    "config": 1,
    "data": 2,
    "trial": 3,
    "learners": 4,
    "validation": 5,
    "explain": 6,
    "report": 7,
    "tracking": 7,
    "serving": 7,
    "pipeline": 8,
    "cli": 9,
}


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> str:
    parts = module.split(".")
    if len(parts) < 2 or (SRC / f"{parts[1]}.py").is_file():
        return ""
    return parts[1]


def _is_module(name: str) -> bool:
    where = SRC.parent / name.replace(".", "/")
    return where.is_dir() or where.with_suffix(".py").is_file()


def _imports(path: Path, module: str | None = None) -> list[tuple[str, int]]:
    """Stratify modules imported by ``path`` (any depth, TYPE_CHECKING blocks included)."""
    module = module or _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            out.append((base, node.lineno))
            # "from stratify.pipeline import execution" imports a module of the package
            named = (f"{base}.{alias.name}" for alias in node.names)
            out += [(name, node.lineno) for name in named if _is_module(name)]
    return [(name, line) for name, line in out if name.split(".")[0] == "stratify"]


def _upward(path: Path, module: str | None = None) -> list[str]:
    own = _room(module or _module(path))
    return [
        f"line {line}: {name} ({_room(name) or 'ground'}, floor {FLOORS[_room(name)]})"
        for name, line in _imports(path, module)
        if FLOORS[_room(name)] > FLOORS[own]
    ]


SOURCES = sorted(p for p in SRC.rglob("*.py") if p.name != "__main__.py")


def test_every_room_has_a_floor():
    rooms = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert rooms == set(FLOORS) - {""}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_import_runs_upward(path):
    upward = _upward(path)
    assert not upward, f"{path.relative_to(SRC)} imports upward: {upward}"


def test_rooms_import_each_other_without_cycles():
    edges: dict[str, set[str]] = {room: set() for room in FLOORS}
    for path in SOURCES:
        own = _room(_module(path))
        edges[own] |= {_room(name) for name, _ in _imports(path)} - {own}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
            for nxt in edges[start]
        )

    cycles = sorted(room for room in edges if reaches(room, room, {room}))
    assert not cycles, f"rooms in an import cycle: {cycles} (edges: {edges})"


def test_the_checker_sees_upward_imports_in_every_form(tmp_path):
    # the checks above cannot pass vacuously
    fake = tmp_path / "fake.py"
    fake.write_text(
        "from stratify.exceptions import StratifyInputError\n"
        "from stratify.pipeline import execution\n"
        "from ..report.figures import explain\n"
        "def later():\n    import stratify.cli.app\n",
        encoding="utf-8",
    )
    found = _upward(fake, "stratify.explain.fake")
    assert [f.split(":")[0] for f in found] == ["line 2", "line 2", "line 3", "line 3", "line 5"]
    assert "stratify.report.figures.explain (report, floor 7)" in found[3]
