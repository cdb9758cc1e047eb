"""``exsvd``: SVD-XT's components with the UNet extended and loaded from an ExVideo ExSVD file."""

from __future__ import annotations

import os
from typing import Any, cast

from pytest_ablation.models.components import SVD_COMPONENTS
from pytest_ablation.models.identity import HashMemo, tree_sha256
from pytest_ablation.models.kinds.pretrained_bundle import PRETRAINED_OPTIONS, bundle_identity
from pytest_ablation.profiles import ModelKind, ModelSpec, checks
from pytest_ablation.profiles.spec import thaw

from .release import EXSVD_FILE, EXSVD_REPO


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    exsvd = {key: options.pop(key) for key in list(options) if key.startswith("exsvd")}
    return options, exsvd


def load(spec: ModelSpec, device: str) -> Any:
    from pytest_ablation.models.pretrained import weights_source

    from .loading import load_exsvd_components

    # The kind requires a source: the profile refuses a role of it without one.
    source = weights_source(cast(str, spec.source), "folder")
    return load_exsvd_components(source, thaw(spec.options), device, f"models.{spec.role}")


def identity(spec: ModelSpec, cache_dir: Any = None) -> dict[str, Any]:
    """The SVD-XT base's identity, plus the ExSVD file's: its content when local."""
    options, exsvd = _split(thaw(spec.options))
    svd = ModelSpec(spec.role, "stable-video-diffusion", spec.source, options)
    base = bundle_identity(svd, cache_dir, SVD_COMPONENTS)
    source = exsvd.get("exsvd", EXSVD_REPO)
    filename = exsvd.get("exsvd_file", EXSVD_FILE)
    path = os.path.expanduser(source)
    if os.path.isdir(path):
        path = os.path.join(path, filename)
    if os.path.isfile(path):
        weights = {"source": os.path.realpath(path), "sha256": tree_sha256(path, None, HashMemo(cache_dir))}
    else:
        weights = {"source": source, "file": filename, "revision": exsvd.get("exsvd_revision", "main")}
    return {**base, "kind": spec.kind, "exsvd": weights}


KIND = ModelKind(
    name="exsvd",
    description="Stable Video Diffusion img2vid-xt components from a hub id or a local folder, "
    "with the UNet extended and loaded from an ExVideo ExSVD file (options.exsvd: a hub "
    "repository, a folder or a .safetensors file; default ECNU-CILab/ExVideo-SVD-128f-v1)",
    load=load,
    identity=identity,
    source="required",
    options={
        **PRETRAINED_OPTIONS,
        "subfolders": checks.subfolders(SVD_COMPONENTS),
        "exsvd": checks.text,
        "exsvd_file": checks.text,
        "exsvd_revision": checks.text,
    },
    local="folder",
    path_options=("exsvd",),
)
