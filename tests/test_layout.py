"""The package's import graph: imports point one way, and the core knows no method.

Every import counts, at module level or inside a function (a lazy import is still a
dependency), so that each concern can be read, tested and replaced on its own.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

import pytest_ablation

PACKAGE_DIR = Path(pytest_ablation.__file__).parent


def module_names(package_dir: Path) -> dict[str, tuple[Path, bool]]:
    """{dotted name: (file, is a package __init__)} for every module below ``package_dir``."""
    names = {}
    for path in package_dir.rglob("*.py"):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        names[".".join(parts)] = (path, is_package)
    return names


def named_module(text: str, modules, *, head: bool = False) -> str | None:
    """The module of the package a string names for an import made at run time, or None:
    "pkg.mod:function", "pkg.mod" (a module, not a package: a package's dotted name is
    also how entry-point groups and resources are named), or, as the constant ``head`` of
    f"pkg.sub.{name}", the package "pkg.sub"."""
    match = re.fullmatch(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(\.?)(:[\w.]+)?", text)
    if match is None or bool(match.group(2)) != head:
        return None
    name = match.group(1)
    if name not in modules:
        return None
    is_package = modules[name][1]
    return name if (head or match.group(3) or not is_package) else None


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """{module: the package's modules it imports}, from the source, without importing it.

    A string that names a module of the package counts as an import of it: the module,
    or a function in it (``"pkg.mod:check"``), imported at run time by ``importlib``.
    """
    modules = module_names(package_dir)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        here = name.split(".") if is_package else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                named = named_module(node.value, modules)
                targets = [named] if named else []
            elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
                named = named_module(str(node.values[0].value), modules, head=True)
                targets = [named] if named else []
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
            else:
                continue
            # The module named, as import linters count it: `from a.b import c` depends on a.b
            # and, when c is a module, on a.b.c; the parent packages' __init__ files, which
            # Python runs first, only re-export and are not counted.
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def unit_of(module: str) -> str:
    """The subpackage (or top-level module) a module belongs to: ``pytest_ablation.models``."""
    return ".".join(module.split(".")[:2])


def unit_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    units: dict[str, set[str]] = defaultdict(set)
    for module, imported in graph.items():
        units[unit_of(module)]
        for other in imported:
            if unit_of(other) != unit_of(module):
                units[unit_of(module)].add(unit_of(other))
    return dict(units)


def test_no_module_imports_itself_back():
    assert cycles(import_graph(PACKAGE_DIR)) == []


def test_no_subpackage_imports_itself_back():
    assert cycles(unit_graph(import_graph(PACKAGE_DIR))) == []


def test_the_core_imports_no_method_and_no_toy_world():
    outside = ("pytest_ablation.methods", "pytest_ablation.toyworld")
    offending = {
        module: sorted(other for other in imported if other.startswith(outside))
        for module, imported in import_graph(PACKAGE_DIR).items()
        if not module.startswith(outside)
    }
    assert {module: others for module, others in offending.items() if others} == {}


# The package's layers, lowest first: a module imports only from its own layer and those
# below it. The plugins a run loads beside the core (the two methods, the toy world) sit on
# top and are checked apart: the core never names them.
LAYERS = (
    ("pytest_ablation.version", "pytest_ablation.lazy", "pytest_ablation.suggest", "pytest_ablation.files"),
    ("pytest_ablation.profiles",),
    ("pytest_ablation.models",),
    ("pytest_ablation.metrics",),
    ("pytest_ablation.stats",),
    ("pytest_ablation.results",),
    ("pytest_ablation.run",),
    ("pytest_ablation.report",),
    ("pytest_ablation.harness",),
    ("pytest_ablation.cli",),
    ("pytest_ablation.methods", "pytest_ablation.toyworld"),
)
LAYER_OF = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def test_every_unit_of_the_package_has_a_layer():
    units = set(unit_graph(import_graph(PACKAGE_DIR))) - {"pytest_ablation"}
    assert units == set(LAYER_OF)


def test_imports_point_down_the_layers():
    upward = sorted(
        f"{module} -> {other}"
        for module, imported in import_graph(PACKAGE_DIR).items()
        for other in imported
        if unit_of(module) in LAYER_OF
        and unit_of(other) in LAYER_OF
        and LAYER_OF[unit_of(other)] > LAYER_OF[unit_of(module)]
    )
    assert upward == []


def test_the_lowest_layers_stand_on_almost_nothing():
    graph = unit_graph(import_graph(PACKAGE_DIR))
    # Profiles stand on nothing of the package but the spelling hint, which stands on nothing.
    assert graph["pytest_ablation.profiles"] <= {"pytest_ablation.suggest"}
    assert graph["pytest_ablation.suggest"] == set()
    # Statistics know numbers, not reports, runs or metrics.
    assert graph["pytest_ablation.stats"] <= {"pytest_ablation.suggest"}


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"a.py": "from . import b\n", "b.py": "def f():\n    from .a import g\n"}, [["pkg.a", "pkg.b"]]),
        (
            {"a.py": "import pkg.sub.c\n", "sub/__init__.py": "", "sub/c.py": "from pkg import a\n"},
            [["pkg.a", "pkg.sub.c"]],
        ),
        (
            {"a.py": "from .sub import c\n", "sub/__init__.py": "", "sub/c.py": "from ..a import x\n"},
            [["pkg.a", "pkg.sub.c"]],
        ),
        ({"a.py": "from . import b\n", "b.py": "import os\n"}, []),
        # Imports made from strings, at run time.
        ({"a.py": "from . import b\n", "b.py": "CHECK = 'pkg.a:check'\n"}, [["pkg.a", "pkg.b"]]),
        ({"a.py": "from . import b\n", "b.py": "def f(n):\n    return f'pkg.a.{n}'\n"}, [["pkg.a", "pkg.b"]]),
        ({"a.py": "from . import b\n", "b.py": "WORDS = 'pkg a'\nDOC = 'see pkg.a for why'\n"}, []),
        # A package's dotted name is also an entry-point group's or a resource's.
        ({"a.py": "from . import sub\n", "sub/__init__.py": "GROUP = 'pkg'\n"}, []),
    ],
)
def test_the_check_finds_a_cycle_where_there_is_one(tmp_path, files, expected):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    assert cycles(import_graph(package)) == expected


def test_every_entry_point_names_a_module_of_the_package():
    # Entry points are how a lower layer reaches a higher one by design (the model kinds
    # the profiles load, the plugins pytest loads); a move must not leave one dangling.
    import tomllib

    project = tomllib.loads((PACKAGE_DIR.parent / "pyproject.toml").read_text(encoding="utf-8"))
    modules = module_names(PACKAGE_DIR)
    targets = [value.split(":")[0] for group in project["project"]["entry-points"].values() for value in group.values()]
    targets += [value.split(":")[0] for value in project["project"]["scripts"].values()]
    assert len(targets) >= 12
    assert [target for target in targets if target not in modules] == []


def test_each_model_kind_is_its_own_module():
    from importlib import metadata

    from pytest_ablation.profiles import model_kinds
    from pytest_ablation.profiles.kinds import ENTRY_POINT_GROUP

    entries = {entry.name: entry for entry in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    kinds = model_kinds()
    assert set(entries) == set(kinds) and len(kinds) >= 8
    modules = [entry.module for entry in entries.values()]
    assert len(set(modules)) == len(modules)
    for name, entry in entries.items():
        assert entry.load() is kinds[name] and kinds[name].name == name


def test_a_request_carries_settings_that_the_settings_schema_defines():
    from dataclasses import fields

    from pytest_ablation.run.generation import VIDEO_SETTINGS, GenerationRequest
    from pytest_ablation.profiles import SETTING_NAMES, load_profile

    assert set(VIDEO_SETTINGS) <= set(SETTING_NAMES)
    assert set(VIDEO_SETTINGS) <= {f.name for f in fields(GenerationRequest)}
    settings = load_profile("tiny").settings
    request = GenerationRequest.from_settings(settings, prompt="a cat", seed=3, device="cpu", config={"mu": 0.5})
    assert {name: getattr(request, name) for name in VIDEO_SETTINGS} == {
        name: getattr(settings, name) for name in VIDEO_SETTINGS
    }
    assert request.generator.initial_seed() == 3 and request.config == {"mu": 0.5}
