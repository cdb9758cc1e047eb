"""Procedural moving-shapes videos: post-tuning data and condition images without files.

Each clip is a smooth two-colour gradient with a few soft-edged discs and squares moving at
constant speed and bouncing off the borders. Everything is drawn from the given CPU
generator, so a seed names a clip exactly on any machine.
"""

from __future__ import annotations

import torch


def _check_positive(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: got {value!r}; expected an integer >= {minimum}")
    return value


def _bounce(start: torch.Tensor, velocity: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    # Positions in [0, 1], reflected at both ends: a triangle wave of period 2.
    x = (start[None] + velocity[None] * t[:, None]) % 2.0
    return torch.where(x > 1.0, 2.0 - x, x)


def moving_shapes(
    num_videos: int,
    frames: int,
    height: int,
    width: int,
    *,
    generator: torch.Generator | None = None,
    shapes: int = 3,
    speed: float = 0.03,
) -> torch.Tensor:
    """``(num_videos, frames, 3, height, width)`` float videos in [0, 1].

    ``speed`` is the largest displacement per frame, as a fraction of the frame size.
    """
    _check_positive(num_videos, "num_videos")
    _check_positive(frames, "frames")
    _check_positive(height, "height", 2)
    _check_positive(width, "width", 2)
    _check_positive(shapes, "shapes", 0)
    if generator is None:
        generator = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.rand(shape, generator=generator)

    ys = torch.linspace(0.0, 1.0, height)[:, None]
    xs = torch.linspace(0.0, 1.0, width)[None, :]
    t = torch.arange(frames, dtype=torch.float32)
    softness = 1.5 / min(height, width)
    videos = []
    for _ in range(num_videos):
        top, bottom = rand(3), rand(3)
        angle = rand(1) * 6.2832
        ramp = (torch.cos(angle) * ys + torch.sin(angle) * xs).clamp(0, 1)  # (H, W)
        canvas = top[:, None, None] * (1 - ramp) + bottom[:, None, None] * ramp
        canvas = canvas.expand(frames, 3, height, width).clone()
        for _ in range(shapes):
            colour = rand(3)
            radius = 0.08 + 0.14 * rand(1)
            centre = rand(2)
            velocity = (rand(2) * 2 - 1) * speed
            path = _bounce(centre, velocity, t)  # (F, 2): y, x
            dy = ys[None] - path[:, 0, None, None]
            dx = xs[None] - path[:, 1, None, None]
            if rand(1).item() < 0.5:
                distance = torch.sqrt(dy**2 + dx**2)
            else:
                distance = torch.maximum(dy.abs(), dx.abs())
            alpha = torch.sigmoid((radius - distance) / softness)[:, None]  # (F, 1, H, W)
            canvas = canvas * (1 - alpha) + colour[None, :, None, None] * alpha
        videos.append(canvas)
    return torch.stack(videos).clamp_(0.0, 1.0)


def scene_image(height: int, width: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """One ``(3, height, width)`` moving-shapes frame in [0, 1]: a condition image."""
    return moving_shapes(1, 1, height, width, generator=generator)[0, 0]
