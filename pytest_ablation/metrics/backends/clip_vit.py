"""OpenAI CLIP image towers as VBench uses them: ViT-B/32 (background_consistency) and
ViT-L/14 (aesthetic_quality, under the LAION head).

VBench loads them with OpenAI's ``clip.load``, which keeps the released half-precision
layout on a GPU (convolutions, linear layers, attention projections and the output
projection in float16; LayerNorms computed in float32; the input cast to float16) and
converts everything to float32 on the CPU. The same happens here: the architecture is
open_clip's CLIP (QuickGELU, as OpenAI trained it); on any non-CPU device it is built with
float32 LayerNorms and converted by open_clip's ``convert_weights_to_lp`` (what its
``precision="fp16"`` does), which is that mixed layout; on the CPU it is float32. Only the
image tower is kept.

Checkpoints read (a local file; nothing is downloaded):

- OpenAI's TorchScript archives ``ViT-B-32.pt`` / ``ViT-L-14.pt``, the files VBench keeps in
  ``~/.cache/vbench/clip_model/``;
- open_clip's ``open_clip_model.safetensors`` / ``open_clip_pytorch_model.bin`` of
  ``timm/vit_base_patch32_clip_224.openai`` / ``timm/vit_large_patch14_clip_224.openai``;
- any OpenAI-layout state dict (``torch.save(model.state_dict())`` of either), possibly
  wrapped as ``{"state_dict": ...}`` with ``module.`` prefixes.

Other weights with the same architecture (LAION's ViT-B-32, for instance) load too but are
not what VBench measures with; the weight file's hash in the score cache key tells them
apart.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn as nn

from pytest_ablation.metrics.backends import state_dicts

# open_clip's names of the architectures, and what they are.
ARCHS = {"ViT-B-32": "OpenAI CLIP ViT-B/32", "ViT-L-14": "OpenAI CLIP ViT-L/14"}
# Entries of OpenAI's TorchScript state dicts that are not parameters.
_JIT_EXTRAS = ("input_resolution", "context_length", "vocab_size")


def _expected(arch: str) -> str:
    title = ARCHS[arch]
    return (
        f"the {title} weights (OpenAI's {arch}.pt, or open_clip's open_clip_model.safetensors "
        f"/ open_clip_pytorch_model.bin of its 'openai' tag)"
    )


def _is_torchscript(path: Path) -> bool:
    # A TorchScript archive is a zip with serialized code and constants beside the data;
    # torch.save's zips have neither.
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def read_state_dict(path: Path, arch: str) -> dict[str, torch.Tensor]:
    loaded: Any
    if _is_torchscript(Path(path)):
        try:
            with warnings.catch_warnings():
                # Only the tensors are read: TorchScript's deprecation is not the user's concern.
                warnings.filterwarnings("ignore", message=".*torch.jit.load", category=FutureWarning)
                loaded = torch.jit.load(str(path), map_location="cpu").state_dict()
        except Exception as error:
            raise ValueError(f"cannot read {path} as {_expected(arch)}: {error}") from error
    else:
        loaded = state_dicts.read(path, _expected(arch))
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} holds a {type(loaded).__name__}, expected {_expected(arch)}")
    state = {}
    for name, tensor in loaded.items():
        if name.startswith("module."):
            name = name[len("module.") :]
        if name not in _JIT_EXTRAS:
            state[name] = tensor
    return state


def half_precision(device: Any) -> bool:
    """Whether VBench's ``clip.load`` would run this device in float16 (any but the CPU)."""
    return torch.device(device).type != "cpu"


def architecture(arch: str, half: bool) -> nn.Module:
    """open_clip's CLIP ``arch`` with QuickGELU, on the meta device: shapes only, no random
    initialisation to pay for, since every parameter comes from the checkpoint. In half
    precision its LayerNorms compute in float32, as OpenAI's do."""
    import open_clip
    from open_clip.model import CLIP

    if arch not in ARCHS:
        raise ValueError(f"unknown CLIP architecture {arch!r}; known: {', '.join(ARCHS)}")
    config = {**open_clip.get_model_config(arch), "quick_gelu": True}
    with torch.device("meta"):
        return CLIP(**config, cast_dtype=torch.float16 if half else None)


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], path: Path, arch: str) -> None:
    expected = model.state_dict()
    # TorchScript archives also hold non-persistent buffers (open_clip's causal text mask):
    # computed at construction, not learnt, so not part of what must match.
    computed = {name for name, _ in model.named_buffers()} - set(expected)
    state = {name: tensor for name, tensor in state.items() if name not in computed}
    problem = state_dicts.mismatch(expected, state)
    if problem:
        raise ValueError(f"{path} is not {_expected(arch)}: {problem}")
    model.load_state_dict(state, strict=True, assign=True)


class ClipImageTower(nn.Module):
    """``encode_image`` of OpenAI's CLIP: the input cast to the tower's dtype, unnormalised
    features out (float16 in half precision, as VBench gets them)."""

    def __init__(self, visual: nn.Module) -> None:
        super().__init__()
        # open_clip's vision tower (untyped): its conv1 is reached by name.
        self.visual: Any = visual

    @property
    def dtype(self) -> torch.dtype:
        return self.visual.conv1.weight.dtype

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        device = self.visual.conv1.weight.device
        return self.visual(images.to(device=device, dtype=self.dtype))


def load(path: Path, arch: str, half: bool) -> nn.Module:
    """The image tower of ``arch`` from ``path``, on the CPU: float32, or OpenAI's half
    precision layout (what its ``convert_weights`` and open_clip's ``precision="fp16"`` make:
    convolution, linear and attention weights and the output projection in float16, the
    LayerNorms and embeddings in float32)."""
    from open_clip.model import convert_weights_to_lp

    model = architecture(arch, half)
    load_weights(model, read_state_dict(path, arch), path, arch)
    visual = cast(nn.Module, model.visual)
    state_dicts.no_meta_left(visual, path)
    # Whatever dtypes the file had (OpenAI's are part float16), float32 first; then the
    # half-precision layout from those values, as clip.load converts its float32 model.
    visual = visual.float()
    if half:
        convert_weights_to_lp(visual, dtype=torch.float16)
    return visual.eval()


def build(path: Path, device: Any, arch: str) -> ClipImageTower:
    return ClipImageTower(load(path, arch, half_precision(device))).to(device)


def build_vit_b32(path: Path, device: Any) -> ClipImageTower:
    """``load_once`` builder for the clip-vitb32 weight file."""
    return build(path, device, "ViT-B-32")


def build_vit_l14(path: Path, device: Any) -> ClipImageTower:
    """``load_once`` builder for the clip-vitl14 weight file."""
    return build(path, device, "ViT-L-14")
