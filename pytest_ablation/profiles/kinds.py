"""Model kinds: what ``kind = "..."`` in a profile names, and where kinds come from.

A kind is one `ModelKind`, declared in one module: how its options are checked, whether it
reads a source, how it loads and how it is identified in cache keys. The profile only checks
a role against its kind's declaration; loading is the kind's own business.

Kinds are found through the ``pytest_ablation.model_kinds`` entry point group, the package's
own as well as other packages': a method or a project adds a kind with one module and one
entry point line, e.g. in its ``pyproject.toml``::

    [project.entry-points."pytest_ablation.model_kinds"]
    my-model = "my_package.kind:MY_MODEL"

`register_model_kind` adds one at run time (a notebook, a test).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from types import MappingProxyType
from typing import Any

from pytest_ablation.profiles.checks import Checker
from pytest_ablation.profiles.settings import ProfileError

ENTRY_POINT_GROUP = "pytest_ablation.model_kinds"
SOURCE_POLICIES = ("none", "optional", "required")
LOCAL_FORMS = ("folder", "file", "any", "never")


@dataclass(frozen=True)
class ModelKind:
    """One kind of model a profile's role may name.

    ``load(spec, device)`` returns the live model; ``identity(spec, cache_dir)`` a JSON-able
    dict that changes whenever the outputs may (it goes into cache keys and the report).
    ``source``: whether a role of this kind takes a source ("none", "optional", "required").
    ``options``: each allowed option and its check (None: any JSON-able option passes).
    ``local``: what a local source is ("folder" in the diffusers layout, a "file", "any",
    or "never" for sources that are not paths, such as a callable's name).
    ``path_options``: options that name weights too, found next to the profile like the source.
    ``check_source(where, source)``: a further check of the source's form.
    """

    name: str
    description: str
    load: Callable[[Any, str], Any]  # (ModelSpec, device)
    identity: Callable[..., dict[str, Any]]
    source: str = "none"
    options: Mapping[str, Checker] | None = field(default_factory=dict)
    required: tuple[str, ...] = ()
    local: str = "any"
    path_options: tuple[str, ...] = ()
    check_source: Callable[[str, str], None] | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCE_POLICIES:
            raise ValueError(f"ModelKind {self.name!r}: source must be one of {SOURCE_POLICIES}")
        if self.local not in LOCAL_FORMS:
            raise ValueError(f"ModelKind {self.name!r}: local must be one of {LOCAL_FORMS}")


_registered: dict[str, ModelKind] = {}
_discovered: dict[str, ModelKind] | None = None


def register_model_kind(kind: ModelKind) -> ModelKind:
    """Make ``kind`` known in this process (over an installed kind of the same name)."""
    if not isinstance(kind, ModelKind):
        raise TypeError(f"register_model_kind: expected a ModelKind, got {kind!r}")
    _registered[kind.name] = kind
    return kind


def _discover() -> dict[str, ModelKind]:
    global _discovered
    if _discovered is None:
        found: dict[str, ModelKind] = {}
        for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry.name in found:
                continue
            kind = entry.load()
            if not isinstance(kind, ModelKind) or kind.name != entry.name:
                raise ProfileError(
                    f"entry point {ENTRY_POINT_GROUP}:{entry.name} = {entry.value!r} must name "
                    f"a ModelKind called {entry.name!r}"
                )
            found[entry.name] = kind
        _discovered = found
    return _discovered


def model_kinds() -> Mapping[str, ModelKind]:
    """Every known kind by name, sorted by name."""
    kinds = {**_discover(), **_registered}
    return MappingProxyType(dict(sorted(kinds.items())))


def model_kind(name: Any, where: str) -> ModelKind:
    """The kind called ``name``, or ProfileError at ``where`` listing the known kinds."""
    kinds = model_kinds()
    if name is None:
        raise ProfileError(f"{where}: missing; the kinds are: {', '.join(kinds)}")
    if not isinstance(name, str) or name not in kinds:
        raise ProfileError(f"{where}: got {name!r}; the kinds are: {', '.join(kinds)}")
    return kinds[name]
