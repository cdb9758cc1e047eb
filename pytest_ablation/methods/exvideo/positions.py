"""Frame position ids: where each frame of a long video reads SVD's positional embedding.

SVD's temporal transformers were trained on 25 frames at ids 0..24. The kinds differ in what
they do past that:

- ``trainable``: ExVideo's learnable table, one row per frame, initialised with the
  sinusoid at the *ping-pong* ids below, so that frames 0..24 start exactly as SVD's.
- ``static``: the fixed sinusoid at 0..T-1, SVD's behaviour extrapolated past 25.
- ``cyclic``: the fixed sinusoid at ``f mod 25``: a periodic id, period 25, that never
  leaves the trained range but jumps from 24 back to 0.
- ``interpolated``: the fixed sinusoid at ``f * 24 / (T - 1)`` once T > 25 (fractional ids
  squeezed into the trained range), at 0..T-1 otherwise.

Ping-pong ids: frames 0..24 get 0..24; afterwards the id walks down from 23 to 4 and back
up to 24, period 40 (``p = (f - 25) mod 40``; ``23 - p`` for ``p < 20``, else ``p - 15``),
so consecutive frames keep neighbouring ids and never leave the trained range.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

POSITION_KINDS = ("trainable", "static", "cyclic", "interpolated")

# Frames Stable Video Diffusion img2vid-xt was trained on: the range of ids it knows.
SVD_FRAMES = 25
# DiffSynth's PositionalID(max_id=25, repeat_length=20), which ExSVD was trained with.
PING_PONG_LENGTH = 20


def check_position(position: object) -> str:
    if not isinstance(position, str) or position not in POSITION_KINDS:
        raise ValueError(
            f"position: got {position!r}; expected one of {', '.join(map(repr, POSITION_KINDS))}"
        )
    return position


def check_frames(num_frames: object, name: str = "num_frames") -> int:
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"{name}: got {num_frames!r}; expected an integer >= 1")
    return num_frames


def ping_pong_id(frame: int, trained: int = SVD_FRAMES, repeat: int = PING_PONG_LENGTH) -> int:
    """The ping-pong position id of one frame index (see the module docstring)."""
    if frame < 0:
        raise ValueError(f"frame: got {frame!r}; expected an index >= 0")
    if frame < trained:
        return frame
    phase = (frame - trained) % (2 * repeat)
    if phase < repeat:
        return trained - 2 - phase
    return trained - 2 * repeat + phase


def ping_pong_ids(num_frames: int, trained: int = SVD_FRAMES, repeat: int = PING_PONG_LENGTH) -> "torch.Tensor":
    import torch

    check_frames(num_frames)
    return torch.tensor([ping_pong_id(f, trained, repeat) for f in range(num_frames)], dtype=torch.long)


def static_ids(num_frames: int) -> "torch.Tensor":
    import torch

    return torch.arange(check_frames(num_frames))


def cyclic_ids(num_frames: int, period: int = SVD_FRAMES) -> "torch.Tensor":
    import torch

    return torch.arange(check_frames(num_frames)) % period


def interpolated_ids(num_frames: int, trained: int = SVD_FRAMES) -> "torch.Tensor":
    import torch

    ids = torch.arange(check_frames(num_frames))
    if num_frames <= trained:
        return ids
    return ids.to(torch.float32) * ((trained - 1) / (num_frames - 1))


def position_ids(position: str, num_frames: int) -> "torch.Tensor":
    """The ids the fixed sinusoid is evaluated at for ``position`` (for ``trainable``: the
    ids its table is initialised at)."""
    kind = check_position(position)
    if kind == "trainable":
        return ping_pong_ids(num_frames)
    if kind == "static":
        return static_ids(num_frames)
    if kind == "cyclic":
        return cyclic_ids(num_frames)
    return interpolated_ids(num_frames)
