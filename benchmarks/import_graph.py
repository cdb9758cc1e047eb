"""The package's import graph at the level of its rooms: the top-level modules and
subpackages of ``pytest_ablation``. Prints the rooms, the arrows between them (distinct
imports of one room by another, ``TYPE_CHECKING`` ones included) and the floors (a room's
floor is one above the highest room it imports).

    python benchmarks/import_graph.py
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_ablation"


def imported(path: Path, parts: list[str]) -> list[str]:
    """The modules of the package that the file imports, dotted below the package."""
    package = parts if path.name == "__init__.py" else parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                found.append(".".join(base + ([node.module] if node.module else [])))
            elif node.module and node.module.startswith("pytest_ablation."):
                found.append(node.module.removeprefix("pytest_ablation."))
        elif isinstance(node, ast.Import):
            found += [
                a.name.removeprefix("pytest_ablation.") for a in node.names if a.name.startswith("pytest_ablation.")
            ]
    return [name for name in found if name]


def main() -> None:
    arrows: set[tuple[str, str]] = set()
    rooms: set[str] = set()
    modules = 0
    module_arrows: set[tuple[str, str]] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        room = parts[0] if parts else "__init__"
        rooms.add(room)
        modules += 1
        for target in imported(path, parts):
            if target.split(".")[0] != room:
                arrows.add((room, target.split(".")[0]))
            module_arrows.add((".".join(parts), target))
    below: dict[str, set[str]] = defaultdict(set)
    for source, target in arrows:
        below[source].add(target)
    floors: dict[str, int] = {}

    def floor(room: str) -> int:
        if room not in floors:
            floors[room] = 1 + max((floor(lower) for lower in below[room]), default=0)
        return floors[room]

    for room in rooms:
        floor(room)
    print(f"rooms {len(rooms)}, arrows {len(arrows)}, floors {max(floors.values())}")
    for level in sorted(set(floors.values())):
        print(f"  floor {level}: {', '.join(sorted(r for r in rooms if floors[r] == level))}")
    print(f"modules {modules}, arrows between modules {len(module_arrows)}")


if __name__ == "__main__":
    main()
