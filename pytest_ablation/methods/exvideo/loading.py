"""Building the ExSVD UNet: SVD-XT's UNet, extended, with the released ExVideo blocks.

    unet = load_exsvd_unet("stabilityai/stable-video-diffusion-img2vid-xt",
                           "ECNU-CILab/ExVideo-SVD-128f-v1", dtype=torch.float16)

Both sources are a hub id or a local path: the base a diffusers folder (with ``unet/``), the
ExSVD source a ``.safetensors`` file, a folder holding ``exsvd_file``, or a hub repository.
"""

from __future__ import annotations

import os
from typing import Any
from collections.abc import Mapping

import torch

from .convert import convert_exsvd_state_dict
from .release import EXSVD_FILE, EXSVD_REPO
from .temporal import extend_unet, exvideo_parameter_names


def exsvd_file(
    source: str = EXSVD_REPO, filename: str = EXSVD_FILE, *, revision: str | None = None, local_files_only: bool = False
) -> str:
    """The local path of the ExSVD weights ``source`` names (downloading a hub file once)."""
    expanded = os.path.expanduser(source)
    if os.path.isfile(expanded):
        return os.path.realpath(expanded)
    if os.path.isdir(expanded):
        path = os.path.join(expanded, filename)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"exsvd: {expanded!r} holds no {filename!r}")
        return os.path.realpath(path)
    from huggingface_hub import hf_hub_download

    return hf_hub_download(source, filename, revision=revision, local_files_only=local_files_only)


def read_exsvd(path: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path)


def install_exsvd(unet, state_dict: Mapping[str, torch.Tensor]) -> Any:
    """Extend ``unet`` (SVD-XT's) as ExSVD is and load a DiffSynth-format ExSVD state dict."""
    frames = {
        t.shape[0]
        for k, t in state_dict.items()
        if isinstance(k, str) and k.endswith("positional_embedding.embeddings") and hasattr(t, "shape")
    }
    if len(frames) != 1:
        raise ValueError(f"exsvd: expected one position-table length in the file, found {sorted(frames) or 'none'}")
    extend_unet(unet, frames.pop(), position="trainable", identity_conv=True)
    converted = convert_exsvd_state_dict(state_dict, unet=unet)
    ref = next(unet.parameters())
    result = unet.load_state_dict(
        {k: v.to(device=ref.device, dtype=ref.dtype) for k, v in converted.items()}, strict=False
    )
    not_loaded = sorted(set(exvideo_parameter_names(unet)) & set(result.missing_keys))
    if result.unexpected_keys or not_loaded:
        raise ValueError(f"exsvd: loading left {not_loaded} unset and found unexpected {result.unexpected_keys}")
    return unet


def load_exsvd_unet(
    base: str,
    exsvd: str = EXSVD_REPO,
    *,
    filename: str = EXSVD_FILE,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    revision: str | None = None,
    exsvd_revision: str | None = None,
    variant: str | None = None,
    local_files_only: bool = False,
):
    from diffusers import UNetSpatioTemporalConditionModel

    kwargs: dict[str, Any] = {"subfolder": "unet", "torch_dtype": dtype, "local_files_only": local_files_only}
    if revision is not None:
        kwargs["revision"] = revision
    if variant is not None:
        kwargs["variant"] = variant
    unet = UNetSpatioTemporalConditionModel.from_pretrained(os.path.expanduser(base), **kwargs)
    path = exsvd_file(exsvd, filename, revision=exsvd_revision, local_files_only=local_files_only)
    install_exsvd(unet, read_exsvd(path))
    unet.to(device)
    unet.eval()
    unet.requires_grad_(False)
    return unet


def load_exsvd_components(source: str, options: Mapping[str, Any], device: str, where: str = "models.svd"):
    """The profile kind ``exsvd``: SVD-XT's components with the ExSVD UNet in place of its own."""
    from pytest_ablation.models.pretrained import load_stable_video_diffusion

    base_options = {k: v for k, v in options.items() if not k.startswith("exsvd")}
    components = load_stable_video_diffusion(source, base_options, device, where)
    path = exsvd_file(
        options.get("exsvd", EXSVD_REPO),
        options.get("exsvd_file", EXSVD_FILE),
        revision=options.get("exsvd_revision"),
        local_files_only=bool(options.get("local_files_only", False)),
    )
    unet = components.unet
    unet.requires_grad_(False)
    install_exsvd(unet, read_exsvd(path))  # new parts take the UNet's device and dtype
    unet.eval()
    unet.requires_grad_(False)
    return components
