"""``open-clip``: an open_clip model as the judge, from a pretrained tag or a checkpoint."""

from __future__ import annotations

from typing import Any

from pytest_ablation.models.identity import local_weights_identity
from pytest_ablation.profiles import ModelKind, ModelSpec, checks
from pytest_ablation.profiles.spec import thaw


def clip_model(name: str, pretrained: str | None, device: str, seed: int) -> Any:
    """A ClipModel of architecture ``name``; ``pretrained=None``: seeded random weights."""
    from pytest_ablation.metrics.clip_model import ClipModel

    if pretrained is not None:
        return ClipModel.from_open_clip(name, pretrained=pretrained, device=device)
    return ClipModel.from_open_clip(name, pretrained=None, device=device, seed=seed)


def load(spec: ModelSpec, device: str) -> Any:
    from pytest_ablation.models.pretrained import weights_source

    pretrained = weights_source(spec.source, "file") if spec.source is not None else None
    return clip_model(spec.options["name"], pretrained, device, spec.options.get("seed", 0))


def identity(spec: ModelSpec, cache_dir: Any = None) -> dict[str, Any]:
    options = thaw(spec.options)
    ident = {"kind": spec.kind, "name": options.pop("name")}
    ident.update(local_weights_identity(spec.source, "file", options, cache_dir, hub_revision=False))
    seed = options.pop("seed", 0)
    if spec.source is None:
        ident["seed"] = seed  # random weights: the seed is what they are
    ident["options"] = options
    return ident


KIND = ModelKind(
    name="open-clip",
    description="an open_clip model: options.name is the architecture, source the pretrained tag "
    "or checkpoint file (none: random weights)",
    load=load,
    identity=identity,
    source="optional",
    options={"name": checks.text, "seed": checks.seed},
    required=("name",),
    local="file",
)
