"""Frame position ids: where each frame of a long video reads SVD's positional embedding.

An SVD UNet's temporal transformers were trained on ``trained`` frames at ids
0..trained-1: the UNet's ``config.num_frames`` (25 for img2vid-xt, 14 for img2vid, 8 for the
toy world's model). Every kind is derived from that length; they differ past it:

- ``trainable``: ExVideo's learnable table, one row per frame, initialised with the
  sinusoid at the *ping-pong* ids below, so that frames 0..trained-1 start exactly as SVD's.
- ``frozen``: the fixed sinusoid at the ping-pong ids: the trainable table's initial rows,
  never trained. It separates what training the table adds from what the ping-pong layout
  alone does.
- ``static``: the fixed sinusoid at 0..T-1, SVD's behaviour extrapolated past the trained
  length.
- ``cyclic``: the fixed sinusoid at ``f mod trained``: a periodic id that never leaves the
  trained range but jumps from trained-1 back to 0.
- ``interpolated``: the fixed sinusoid at ``f * (trained - 1) / (T - 1)`` once T > trained
  (fractional ids squeezed into the trained range), at 0..T-1 otherwise.

Ping-pong ids (DiffSynth's ``PositionalID(max_id, repeat_length)``, which ExSVD was trained
with): frames 0..trained-1 get their own index; afterwards the id walks down from trained-2
for ``repeat`` frames, then back up to trained-1, period ``2 * repeat``
(``p = (f - trained) mod 2 repeat``; ``trained - 2 - p`` for ``p < repeat``, else
``trained - 2 repeat + p``), so consecutive frames keep neighbouring ids and never leave
the trained range. ``repeat`` is ``ping_pong_repeat(trained)`` = ``4 * trained // 5``: the
walk covers the same four fifths of the trained range at any length, and for SVD-XT's 25 it
is DiffSynth's 20 (ids 0..24, then 23 down to 4 and 5 up to 24, period 40).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

POSITION_KINDS = ("trainable", "frozen", "static", "cyclic", "interpolated")

# Frames Stable Video Diffusion img2vid-xt was trained on: the trained length of a UNet whose
# config does not say (diffusers' own default for UNetSpatioTemporalConditionModel).
SVD_FRAMES = 25
# DiffSynth's PositionalID(max_id=25, repeat_length=20), which ExSVD was trained with:
# ping_pong_repeat(SVD_FRAMES) gives it.
PING_PONG_LENGTH = 20


def check_position(position: object) -> str:
    if not isinstance(position, str) or position not in POSITION_KINDS:
        raise ValueError(f"position: got {position!r}; expected one of {', '.join(map(repr, POSITION_KINDS))}")
    return position


def check_frames(num_frames: object, name: str = "num_frames") -> int:
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"{name}: got {num_frames!r}; expected an integer >= 1")
    return num_frames


def trained_frames(unet: object) -> int:
    """The number of frames an SVD UNet was trained on: its ``config.num_frames``.

    A config without the entry gets diffusers' default, SVD-XT's 25."""
    config = getattr(unet, "config", None)
    value = getattr(config, "num_frames", None)
    if value is None and isinstance(config, dict):
        value = config.get("num_frames")
    if value is None:
        return SVD_FRAMES
    return check_frames(int(value) if not isinstance(value, bool) else value, "unet.config.num_frames")


def ping_pong_repeat(trained: int) -> int:
    """The ping-pong walk's length for a model trained on ``trained`` frames (>= 2)."""
    check_frames(trained, "trained")
    if trained < 2:
        raise ValueError(f"trained: got {trained}; a ping-pong walk needs at least 2 trained ids")
    return max(1, 4 * trained // 5)


def ping_pong_id(frame: int, trained: int = SVD_FRAMES, repeat: int | None = None) -> int:
    """The ping-pong position id of one frame index (see the module docstring)."""
    if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
        raise ValueError(f"frame: got {frame!r}; expected an index >= 0")
    check_frames(trained, "trained")
    if frame < trained:
        return frame
    if repeat is None:
        repeat = ping_pong_repeat(trained)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= trained - 1:
        raise ValueError(f"repeat: got {repeat!r}; expected an integer in 1..{trained - 1}")
    phase = (frame - trained) % (2 * repeat)
    if phase < repeat:
        return trained - 2 - phase
    return trained - 2 * repeat + phase


def ping_pong_ids(num_frames: int, trained: int = SVD_FRAMES, repeat: int | None = None) -> torch.Tensor:
    import torch

    check_frames(num_frames)
    return torch.tensor([ping_pong_id(f, trained, repeat) for f in range(num_frames)], dtype=torch.long)


def static_ids(num_frames: int) -> torch.Tensor:
    import torch

    return torch.arange(check_frames(num_frames))


def cyclic_ids(num_frames: int, period: int = SVD_FRAMES) -> torch.Tensor:
    import torch

    return torch.arange(check_frames(num_frames)) % check_frames(period, "period")


def interpolated_ids(num_frames: int, trained: int = SVD_FRAMES) -> torch.Tensor:
    import torch

    ids = torch.arange(check_frames(num_frames))
    if num_frames <= check_frames(trained, "trained"):
        return ids
    return ids.to(torch.float32) * ((trained - 1) / (num_frames - 1))


def position_ids(position: str, num_frames: int, trained: int = SVD_FRAMES) -> torch.Tensor:
    """The ids the fixed sinusoid is evaluated at for ``position`` on a model trained on
    ``trained`` frames (for ``trainable``: the ids its table is initialised at)."""
    kind = check_position(position)
    if kind in ("trainable", "frozen"):
        return ping_pong_ids(num_frames, trained)
    if kind == "static":
        return static_ids(num_frames)
    if kind == "cyclic":
        return cyclic_ids(num_frames, trained)
    return interpolated_ids(num_frames, trained)
