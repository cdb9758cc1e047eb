"""``callable``: whatever a user's ``function(device=..., **options)`` returns."""

from __future__ import annotations

import re
from typing import Any, cast

from pytest_ablation.profiles import ModelKind, ModelSpec
from pytest_ablation.profiles.checks import fail
from pytest_ablation.profiles.spec import thaw

_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_CALLABLE = re.compile(rf"^{_DOTTED}:{_DOTTED}$")


def load(spec: ModelSpec, device: str) -> Any:
    from pytest_ablation.models.pretrained import resolve_callable

    # The kind requires a source: the profile refuses a role of it without one.
    function = resolve_callable(cast(str, spec.source), f"models.{spec.role}.source")
    return function(device=device, **thaw(spec.options))


def identity(spec: ModelSpec, cache_dir: Any = None) -> dict[str, Any]:
    return {"kind": spec.kind, "source": spec.source, "options": thaw(spec.options)}


def check_source(where: str, source: str) -> None:
    if not _CALLABLE.match(source):
        raise fail(where, source, "'package.module:function'")


KIND = ModelKind(
    name="callable",
    description="source 'package.module:function', called as function(device=..., **options)",
    load=load,
    identity=identity,
    source="required",
    options=None,
    local="never",
    check_source=check_source,
)
