"""Control videos: toy-world clips with one known temporal defect each, to check that a metric
moves the way it should.

Every control is the same scene (colour, shape and plain background drawn from ``seed``) of
extent ``EXTENT`` of the frame, moving right at ``SPEED`` pixels per frame through the
frame's centre, and differs from ``"smooth"`` in one way from frame ``change_frame(frames)``
on:

- ``still``: the shape does not move (centred);
- ``smooth``: the reference, steady motion;
- ``teleport``: the shape jumps down by ``JUMP`` of the frame's side, then moves on;
- ``identity_swap``: the shape becomes the next one in ``SHAPES`` (same colour and extent);
- ``colour_swap``: the colour becomes the next one in ``COLOURS`` (same jitter);
- ``background_change``: each background channel moves by ``BACKGROUND_STEP`` (up from a
  dark grey, down from a light one), everywhere in the frame.

The geometry is fixed so that a test can derive how far each defect must move its metric.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from pytest_ablation.toyworld.data import (
    COLOURS,
    IMAGE_SIZE,
    SHAPES,
    ShapeScene,
    render,
    sample_images,
)

CONTROLS: tuple[str, ...] = (
    "still",
    "smooth",
    "teleport",
    "identity_swap",
    "colour_swap",
    "background_change",
)
EXTENT = 0.375  # of the frame's side: 12 px at 32
SPEED = 1.5  # pixels per frame; a half-pixel step, so motion compensation must interpolate
JUMP = 0.25  # of the frame's side: 8 px at 32
BACKGROUND_STEP = 0.25  # per channel: a distance of 0.25 * sqrt(3) = 0.43 at every pixel
# The background greys data.py draws lie in [0.08, 0.50] (tint +-0.06): a step down from
# above this middle, up from below it, keeps the new grey in about the same range.
_MIDDLE_GREY = 0.29


def change_frame(frames: int) -> int:
    """The first frame a control's defect shows in: the middle of the clip."""
    return frames // 2


def control_video(
    kind: str, *, frames: int = 8, size: int = IMAGE_SIZE, seed: int = 0
) -> tuple[torch.Tensor, tuple[ShapeScene, ...]]:
    """The control ``kind`` (one of ``CONTROLS``): the video (frames, 3, size, size) float32 in
    [0, 1] and its scene at every frame."""
    if kind not in CONTROLS:
        raise ValueError(f"kind: unknown control {kind!r}; known: {', '.join(CONTROLS)}")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 4:
        raise ValueError(f"frames must be an integer >= 4 (a defect needs frames around it), got {frames!r}")
    scenes = control_scenes(kind, frames=frames, size=size, seed=seed)
    video = torch.stack([render(scene, size) for scene in scenes])
    return video, scenes


def control_scenes(kind: str, *, frames: int, size: int, seed: int) -> tuple[ShapeScene, ...]:
    """The scenes of ``control_video`` (see there)."""
    drawn = sample_images(1, seed=seed, size=size)[2][0]
    extent = EXTENT * size
    # Keep the whole path in the frame: a long clip moves slower than SPEED.
    speed = min(SPEED, (size - extent) / (frames - 1))
    base = replace(
        drawn, size=extent, background_end=drawn.background, gradient_angle=0.0, direction="right", speed=speed
    )
    k = change_frame(frames)
    centre = size / 2
    xs = centre + speed * (np.arange(frames) - (frames - 1) / 2)
    scenes = []
    for t in range(frames):
        scene = replace(base, x=float(xs[t]), y=centre)
        after = t >= k
        if kind == "still":
            scene = replace(scene, x=centre, direction=None, speed=0.0)
        elif kind == "teleport":
            jump = JUMP * size
            scene = replace(scene, y=centre - jump / 2 + (jump if after else 0.0))
        elif kind == "identity_swap" and after:
            scene = replace(scene, shape=SHAPES[(SHAPES.index(base.shape) + 1) % len(SHAPES)])
        elif kind == "colour_swap" and after:
            names = list(COLOURS)
            other = names[(names.index(base.colour) + 1) % len(names)]
            offset = np.asarray(base.rgb) - np.asarray(COLOURS[base.colour])
            rgb = np.clip(np.asarray(COLOURS[other]) + offset, 0.0, 1.0)
            scene = replace(scene, colour=other, rgb=_triple(rgb))
        elif kind == "background_change" and after:
            grey = float(np.mean(base.background))
            step = BACKGROUND_STEP if grey < _MIDDLE_GREY else -BACKGROUND_STEP
            changed = _triple(np.clip(np.asarray(base.background) + step, 0.0, 1.0))
            scene = replace(scene, background=changed, background_end=changed)
        scenes.append(scene)
    return tuple(scenes)


def _triple(values: np.ndarray) -> tuple[float, float, float]:
    return (float(values[0]), float(values[1]), float(values[2]))


def control_table(seeds: int = 4, *, frames: int = 8, size: int = IMAGE_SIZE, judge: bool = True) -> str:
    """A markdown table: each control's parser metrics (and plain flicker), mean over seeds
    0..seeds-1; with ``judge``, the toy judge's ``temporal_consistency`` beside them."""
    from pytest_ablation.metrics.inputs import MetricInput
    from pytest_ablation.metrics.registry import get_metric
    from pytest_ablation.toyworld.metrics import TOY_METRICS

    clip = None
    if judge:
        from pytest_ablation.models import load_model
        from pytest_ablation.profiles import load_profile

        clip = load_model(load_profile("toy").model("clip"), "cpu")
    names = [spec.name for spec in TOY_METRICS]
    headers = ["control", *names, "flicker (uncompensated)"]
    if clip is not None:
        headers.append("temporal_consistency (toy judge)")
    rows = []
    for kind in CONTROLS:
        sums = np.zeros(len(headers) - 1)
        for seed in range(seeds):
            video, _ = control_video(kind, frames=frames, size=size, seed=seed)
            inp = MetricInput(video, clip=clip)
            found = [spec.evaluate(inp) for spec in TOY_METRICS]
            values = [score.value for score in found]
            values.append(found[names.index("warping_error")].details["flicker_uncompensated"])
            if clip is not None:
                values.append(get_metric("temporal_consistency").evaluate(inp).value)
            sums += np.asarray(values)
        rows.append([kind, *(f"{round(v / seeds, 4) + 0.0:.4f}" for v in sums)])  # no -0.0000
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


__all__ = [
    "BACKGROUND_STEP",
    "CONTROLS",
    "EXTENT",
    "JUMP",
    "SPEED",
    "change_frame",
    "control_scenes",
    "control_table",
    "control_video",
]


if __name__ == "__main__":  # python -m pytest_ablation.toyworld.controls
    print(control_table())
