"""What the kinds read with ``from_pretrained`` share: their options, and a bundle of parts in
a folder of the diffusers layout (or a hub repository) as source and identity."""

from __future__ import annotations

from typing import Any, cast

from pytest_ablation.models.identity import bundle_parts, local_weights_identity
from pytest_ablation.profiles import ModelKind, ModelSpec, checks
from pytest_ablation.profiles.spec import thaw

PRETRAINED_OPTIONS: dict[str, checks.Checker] = {
    "revision": checks.text,
    "variant": checks.text,
    "dtype": checks.dtype,
    "local_files_only": checks.flag,
    "scheduler": checks.class_name,
    "scheduler_config": checks.table,
}


def bundle_identity(spec: ModelSpec, cache_dir: Any, components: tuple[str, ...]) -> dict[str, Any]:
    """The bundle's source (its files' content when local) and the options left."""
    options = thaw(spec.options)
    where = local_weights_identity(spec.source, "folder", options, cache_dir, bundle_parts(components, options))
    return {"kind": spec.kind, **where, "options": options}


def pretrained_bundle_kind(name: str, description: str, loader: str, components: tuple[str, ...]) -> ModelKind:
    """A kind whose role is the bundle `pytest_ablation.models.pretrained.<loader>` reads."""

    def load(spec: ModelSpec, device: str) -> Any:
        from pytest_ablation.models import pretrained

        # The kind requires a source: the profile refuses a role of it without one.
        source = pretrained.weights_source(cast(str, spec.source), "folder")
        return getattr(pretrained, loader)(source, spec.options, device, f"models.{spec.role}")

    def identity(spec: ModelSpec, cache_dir: Any = None) -> dict[str, Any]:
        return bundle_identity(spec, cache_dir, components)

    return ModelKind(
        name=name,
        description=description,
        load=load,
        identity=identity,
        source="required",
        options={**PRETRAINED_OPTIONS, "subfolders": checks.subfolders(components)},
        local="folder",
    )
