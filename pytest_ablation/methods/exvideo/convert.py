"""ExSVD checkpoints (DiffSynth names) to and from the extended diffusers UNet's names.

The released ``ECNU-CILab/ExVideo-SVD-128f-v1`` file holds the post-tuned part of SVD-XT's
16 temporal transformers in DiffSynth-Studio's flat ``blocks.<i>`` layout. Block ``i`` is a
fixed temporal transformer of the diffusers UNet (``EXSVD_BLOCKS``), and inside a block the
names map one to one (``_SUFFIXES``). The conversion is exact and complete: every key of the
file must be one of these, every expected key must be present, and every shape must be the
one the target UNet (by default SVD-XT extended to the file's frame count) has.
"""

from __future__ import annotations

import functools
import re
from typing import cast
from collections.abc import Mapping

import torch

from pytest_ablation.models.paper_scale import SVD_XT_UNET

from .temporal import _listing, exvideo_parameter_names, extend_unet

# DiffSynth's block index of each temporal transformer of SVD-XT, in diffusers names.
EXSVD_BLOCKS: dict[int, str] = {
    7: "down_blocks.0.attentions.0",
    17: "down_blocks.0.attentions.1",
    29: "down_blocks.1.attentions.0",
    39: "down_blocks.1.attentions.1",
    51: "down_blocks.2.attentions.0",
    61: "down_blocks.2.attentions.1",
    83: "mid_block.attentions.0",
    113: "up_blocks.1.attentions.0",
    123: "up_blocks.1.attentions.1",
    133: "up_blocks.1.attentions.2",
    144: "up_blocks.2.attentions.0",
    154: "up_blocks.2.attentions.1",
    164: "up_blocks.2.attentions.2",
    175: "up_blocks.3.attentions.0",
    185: "up_blocks.3.attentions.1",
    195: "up_blocks.3.attentions.2",
}

_T = "temporal_transformer_blocks.0."
_ATTENTION = ("to_q.weight", "to_k.weight", "to_v.weight")

# DiffSynth name inside a block -> diffusers name inside the temporal transformer.
_SUFFIXES: dict[str, str] = {
    "positional_embedding.embeddings": "time_proj.embeddings",
    "positional_conv.weight": "position_conv.weight",
    "positional_conv.bias": "position_conv.bias",
    **{
        f"positional_embedding_proj.{a}.{w}": f"time_pos_embed.linear_{b}.{w}"
        for a, b in (("0", "1"), ("2", "2"))
        for w in ("weight", "bias")
    },
    **{
        f"{name}.{w}": f"{_T}{target}.{w}"
        for name, target in (
            ("norm_in", "norm_in"),
            ("act_fn_in.proj", "ff_in.net.0.proj"),
            ("ff_in", "ff_in.net.2"),
            ("norm1", "norm1"),
            ("norm2", "norm2"),
            ("norm_out", "norm3"),
            ("act_fn_out.proj", "ff.net.0.proj"),
            ("ff_out", "ff.net.2"),
            ("attn1.to_out", "attn1.to_out.0"),
            ("attn2.to_out", "attn2.to_out.0"),
        )
        for w in ("weight", "bias")
    },
    **{f"attn{i}.{w}": f"{_T}attn{i}.{w}" for i in (1, 2) for w in _ATTENTION},
}
_PREFIXES = {v: k for k, v in EXSVD_BLOCKS.items()}
_FROM_DIFFUSERS = {v: k for k, v in _SUFFIXES.items()}

# The UNet configuration of stabilityai/stable-video-diffusion-img2vid-xt.
SVD_XT_UNET_CONFIG: dict = SVD_XT_UNET

_KEY = re.compile(r"^blocks\.(\d+)\.(.+)$")


class CheckpointError(ValueError):
    """An ExSVD checkpoint that does not match the layout exactly; the message lists why."""


def svd_xt_unet(
    max_frames: int = 128,
    *,
    device: str | torch.device = "meta",
    config: Mapping | None = None,
    position: str = "trainable",
    identity_conv: bool = True,
):
    """SVD-XT's UNet (or ``config``'s), extended: on the meta device it costs no memory."""
    from diffusers import UNetSpatioTemporalConditionModel

    with torch.device(device):
        unet = UNetSpatioTemporalConditionModel(**dict(config or SVD_XT_UNET_CONFIG))
    # To a type checker diffusers' top-level name is its torch-less dummy, not an nn.Module.
    return extend_unet(cast(torch.nn.Module, unet), max_frames, position=position, identity_conv=identity_conv)


@functools.lru_cache(maxsize=4)
def _svd_xt_shapes(max_frames: int) -> dict[str, tuple[int, ...]]:
    unet = svd_xt_unet(max_frames)
    return {n: tuple(p.shape) for n, p in unet.named_parameters()}


def _expected_shapes(unet, max_frames: int | None) -> dict[str, tuple[int, ...]]:
    if unet is not None:
        wanted = set(exvideo_parameter_names(unet))
        return {n: tuple(p.shape) for n, p in unet.named_parameters() if n in wanted}
    return _svd_xt_shapes(max_frames or 128)


def _target_names() -> list[str]:
    return [f"{prefix}.{suffix}" for prefix in EXSVD_BLOCKS.values() for suffix in _SUFFIXES.values()]


def convert_exsvd_state_dict(state_dict: Mapping[str, torch.Tensor], unet=None) -> dict[str, torch.Tensor]:
    """A DiffSynth-format ExSVD state dict, renamed for the extended diffusers UNet.

    Every key must map and every expected key be present (16 temporal transformers x 33
    tensors); shapes are checked against ``unet`` (an extended UNet of SVD-XT's layout) or,
    by default, SVD-XT extended to the frame count of the file's position tables. Anything
    else raises ``CheckpointError`` listing each unknown, missing and mis-shaped key.
    """
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"state_dict: got {type(state_dict).__name__}; expected a mapping of names to tensors")
    converted: dict[str, torch.Tensor] = {}
    unknown = []
    for key, tensor in state_dict.items():
        match = _KEY.match(key) if isinstance(key, str) else None
        prefix = EXSVD_BLOCKS.get(int(match.group(1))) if match else None
        suffix = _SUFFIXES.get(match.group(2)) if match else None
        if prefix is None or suffix is None or not isinstance(tensor, torch.Tensor):
            unknown.append(str(key))
            continue
        converted[f"{prefix}.{suffix}"] = tensor
    return _checked(converted, unet, unknown, name_of=_to_diffsynth_name)


def to_exsvd_state_dict(state_dict: Mapping[str, torch.Tensor], unet=None) -> dict[str, torch.Tensor]:
    """The inverse: an extended UNet's ExVideo state dict (diffusers names) in DiffSynth's
    names, checked the same way, e.g. to save a post-tuned UNet as an ExSVD file."""
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"state_dict: got {type(state_dict).__name__}; expected a mapping of names to tensors")
    unknown = [
        str(k) for k, v in state_dict.items() if _to_diffsynth_name(k) is None or not isinstance(v, torch.Tensor)
    ]
    known = {k: v for k, v in state_dict.items() if str(k) not in set(unknown)}
    checked = _checked(dict(known), unet, unknown, name_of=lambda n: n)
    # _checked refused every name without a DiffSynth one (``unknown``).
    return {cast(str, _to_diffsynth_name(k)): v for k, v in checked.items()}


def _to_diffsynth_name(name: str) -> str | None:
    if not isinstance(name, str):
        return None
    for prefix, index in _PREFIXES.items():
        if name.startswith(prefix + "."):
            suffix = _FROM_DIFFUSERS.get(name[len(prefix) + 1 :])
            return None if suffix is None else f"blocks.{index}.{suffix}"
    return None


def _checked(converted: dict, unet, unknown: list[str], name_of) -> dict:
    frames = {tuple(t.shape)[0] for n, t in converted.items() if n.endswith("time_proj.embeddings") and t.ndim == 2}
    expected = _expected_shapes(unet, max(frames) if len(frames) == 1 else None)
    targets = set(_target_names())
    missing = sorted(name_of(n) for n in targets - set(converted))
    extra = sorted(name_of(n) for n in set(converted) - targets)
    mis_shaped = []
    for name in sorted(set(converted) & targets):
        want = expected.get(name)
        got = tuple(converted[name].shape)
        if want is None:
            missing.append(f"{name_of(name)} (the target UNet has no such parameter)")
        elif got != want:
            mis_shaped.append(f"{name_of(name)}: got {list(got)}, expected {list(want)}")
    if len(frames) > 1:
        mis_shaped.append(f"position tables of different lengths: {sorted(frames)}")
    if unknown or extra or missing or mis_shaped:
        raise CheckpointError(
            "not an ExSVD checkpoint of SVD-XT's layout:"
            + _listing("unknown keys", sorted(unknown) + extra)
            + _listing("missing keys", missing)
            + _listing("mis-shaped keys", mis_shaped)
        )
    return converted
