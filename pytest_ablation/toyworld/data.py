"""The toy world's data: coloured shapes on muted backgrounds, still or moving.

Everything is drawn from a local generator seeded by the caller, so the same arguments give
bitwise the same tensors in any process, whatever the global RNG state. Shapes are rendered
from signed distances with a one-pixel ramp at the edge (cheap anti-aliasing), all images of a
batch at once, so ten thousand 32x32 images take well under a second.

The colours are far apart in RGB and backgrounds are greys with a slight tint (plain or a
soft gradient), kept away from every named colour: a caption's colour is always the nearest
named colour of the shape's pixels and never of the background's.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

IMAGE_SIZE = 32
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.10, 0.10),
    "green": (0.10, 0.75, 0.20),
    "blue": (0.15, 0.30, 0.95),
    "yellow": (0.95, 0.85, 0.10),
    "purple": (0.60, 0.15, 0.80),
}
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")
# How a video's shape moves: straight across (the path fits the clip), or reflecting off the
# frame's edges (size and speed independent of the clip length).
MOTIONS: tuple[str, ...] = ("straight", "bounce")

# Pixel offset per frame of each direction; y grows downwards as in the image tensor.
DIRECTION_VECTORS: dict[str, tuple[int, int]] = {
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),
    "down": (0, 1),
}

# A shape spans this share of the frame (its bounding extent, before it is moved).
SIZE_RANGE = (0.30, 0.60)
# Each channel of a shape's colour is jittered by up to this much: enough variety that a
# model cannot memorise one RGB triple, far too little to reach another named colour.
COLOUR_JITTER = 0.05
# Background greys (before their tint) and the tint per channel: together they stay more
# than 0.3 away (Euclidean, RGB) from every named colour.
BACKGROUND_GREY = (0.08, 0.50)
BACKGROUND_TINT = 0.06
GRADIENT_SHARE = 0.5

MIN_SIZE = 8

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class ShapeScene:
    """One frame: a single shape over a background.

    ``x``, ``y``: the shape's centre in pixels (from the top-left corner, y down); ``size``:
    its extent in pixels; ``rgb``: the colour actually painted (``colour`` jittered);
    the background runs from ``background`` to ``background_end`` along ``gradient_angle``
    (radians; equal ends: a plain background). Frames of a video also carry the motion.
    """

    colour: str
    shape: str
    x: float
    y: float
    size: float
    rgb: RGB
    background: RGB
    background_end: RGB
    gradient_angle: float = 0.0
    direction: str | None = None
    speed: float = 0.0

    @property
    def caption(self) -> str:
        if self.direction is None:
            return caption(self.colour, self.shape)
        return video_caption(self.colour, self.shape, self.direction)


def caption(colour: str, shape: str) -> str:
    _check_names([colour], COLOURS, "colour")
    _check_names([shape], SHAPES, "shape")
    return f"a {colour} {shape}"


def video_caption(colour: str, shape: str, direction: str) -> str:
    _check_names([direction], DIRECTIONS, "direction")
    return f"{caption(colour, shape)} moving {direction}"


def captions() -> list[str]:
    """Every image caption, colour-major: "a red circle", "a red square", ..."""
    return [caption(colour, shape) for colour in COLOURS for shape in SHAPES]


def video_captions() -> list[str]:
    """Every video caption, colour-major, then shape, then direction."""
    return [
        video_caption(colour, shape, direction) for colour in COLOURS for shape in SHAPES for direction in DIRECTIONS
    ]


def unrenderable(prompts: Sequence[str]) -> list[str]:
    """A line per prompt the toy world cannot draw, saying what it can; empty when it can
    draw them all. It draws its captions: "a <colour> <shape>", optionally followed by
    "moving <direction>"."""
    known = set(captions()) | set(video_captions())
    # As CLIP's tokenizer reads a prompt: lower case, runs of white space as one.
    bad = [prompt for prompt in prompts if " ".join(str(prompt).lower().split()) not in known]
    if not bad:
        return []
    what = (
        f'the toy world draws "a <colour> <shape>" or "a <colour> <shape> moving '
        f'<direction>", colour one of {", ".join(COLOURS)}; shape one of {", ".join(SHAPES)}; '
        f"direction one of {', '.join(DIRECTIONS)}"
    )
    return [f"{prompt!r} is not a scene it can draw: {what}" for prompt in bad]


def vocabulary() -> list[str]:
    """Every word any caption uses, in first-use order."""
    words: dict[str, None] = {}
    for text in video_captions():
        words.update(dict.fromkeys(text.split()))
    return list(words)


def render(scene: ShapeScene, size: int = IMAGE_SIZE) -> torch.Tensor:
    """One scene as a float32 (3, size, size) image in [0, 1]."""
    _check_size(size)
    _check_names([scene.colour], COLOURS, "scene.colour")
    _check_names([scene.shape], SHAPES, "scene.shape")
    return _render_batch([scene], size)[0]


def sample_images(
    n: int,
    *,
    seed: int,
    size: int = IMAGE_SIZE,
    colours: Sequence[str] | None = None,
    shapes: Sequence[str] | None = None,
) -> tuple[torch.Tensor, list[str], list[ShapeScene]]:
    """``n`` random scenes: images (n, 3, size, size) float32 in [0, 1], captions, scenes.

    ``colours`` / ``shapes`` restrict the draw to those names (default: all of them).
    """
    _check_count(n, "n")
    _check_size(size)
    colour_names = _names_or_all(colours, COLOURS, "colours")
    shape_names = _names_or_all(shapes, SHAPES, "shapes")
    rng = np.random.default_rng(_check_seed(seed))
    scenes = _draw_scenes(rng, n, size, colour_names, shape_names)
    images = _render_batch(scenes, size)
    return images, [scene.caption for scene in scenes], scenes


def sample_videos(
    n: int,
    frames: int,
    *,
    seed: int,
    size: int = IMAGE_SIZE,
    speed_range: tuple[float, float] = (0.5, 2.0),
    motion: str = "straight",
) -> tuple[torch.Tensor, list[str], list[tuple[ShapeScene, ...]]]:
    """``n`` videos of one shape moving in one direction at a steady speed.

    Returns videos (n, frames, 3, size, size) float32 in [0, 1], captions ("a red circle
    moving left") and, per video, its scene at every frame.

    ``motion="straight"``: the shape moves straight and stays wholly inside the frame: its
    start is drawn from the positions that leave room for the whole path. When a path is
    longer than the frame allows, the shape is drawn smaller (down to the smallest size) and
    then, if still needed, slower; so a long clip at a high speed gets shapes moving slower
    than ``speed_range`` asks.

    ``motion="bounce"``: the shape starts where it was drawn and reflects off the frame's
    edges (its extent touching the edge), so its size and speed are those drawn whatever the
    clip length, and the first frames of a long clip are the frames of a short one with the
    same seed. The caption names the direction of the first step; each frame's scene carries
    the direction it is moving in at that frame.
    """
    _check_count(n, "n")
    _check_count(frames, "frames")
    _check_size(size)
    low, high = _check_speed_range(speed_range)
    _check_names([motion], MOTIONS, "motion")
    rng = np.random.default_rng(_check_seed(seed))
    starts = _draw_scenes(rng, n, size, list(COLOURS), list(SHAPES))
    direction_index = rng.integers(0, len(DIRECTIONS), n)
    speeds = rng.uniform(low, high, n)
    along = rng.uniform(0.0, 1.0, n)
    steps = frames - 1
    videos: list[tuple[ShapeScene, ...]] = []
    for start, d, speed, fraction in zip(starts, direction_index, speeds, along, strict=True):
        direction = DIRECTIONS[int(d)]
        if motion == "bounce":
            videos.append(_bouncing(start, direction, float(speed), frames, size))
            continue
        extent = start.size
        travel = float(speed) * steps
        if travel > size - extent:
            extent = max(SIZE_RANGE[0] * size, size - travel)
            travel = min(travel, size - extent)
        speed = travel / steps if steps else float(speed)
        dx, dy = DIRECTION_VECTORS[direction]
        half = extent / 2
        # Along the motion, a start that leaves room for the whole path; across it, the drawn
        # centre, which still fits since the shape can only have shrunk.
        first = half + fraction * (size - extent - travel)
        x0 = start.x if dx == 0 else (first if dx > 0 else size - first)
        y0 = start.y if dy == 0 else (first if dy > 0 else size - first)
        base = replace(start, size=extent, direction=direction, speed=speed)
        videos.append(tuple(replace(base, x=x0 + dx * speed * t, y=y0 + dy * speed * t) for t in range(frames)))
    flat = [scene for video in videos for scene in video]
    pixels = _render_batch(flat, size).reshape(n, frames, 3, size, size)
    return pixels, [video[0].caption for video in videos], videos


def tuning_clips(
    clips: int, frames: int, height: int, width: int, *, seed: int, motion: str = "straight"
) -> torch.Tensor:
    """``clips`` square moving-shape videos (clips, frames, 3, height, width): the clip
    source of a post-tuning recipe (``source = "pytest_ablation.toyworld.data:tuning_clips"``).
    ``motion`` as in ``sample_videos``."""
    if height != width:
        raise ValueError(f"height, width: got {height}x{width}; the toy world draws square clips")
    return sample_videos(clips, frames, seed=seed, size=height, motion=motion)[0]


def bouncing_clips(clips: int, frames: int, height: int, width: int, *, seed: int) -> torch.Tensor:
    """``tuning_clips`` with bouncing motion: a recipe source
    (``source = "pytest_ablation.toyworld.data:bouncing_clips"``) whose shapes keep their
    size and speed however long the clips are."""
    return tuning_clips(clips, frames, height, width, seed=seed, motion="bounce")


def _bouncing(start: ShapeScene, direction: str, speed: float, frames: int, size: int) -> tuple[ShapeScene, ...]:
    """The scenes of a shape moving from ``start`` at ``speed`` and reflecting off the edges.

    Along the motion the centre runs between ``low = extent / 2`` and ``high = size - low``.
    Unfolding the reflections, the centre moves freely along a line of period ``2 * span``;
    folding that position back (a triangle wave) gives the reflected path, exactly, whatever
    the number of reflections within one step.
    """
    dx, dy = DIRECTION_VECTORS[direction]
    low = start.size / 2
    span = size - start.size  # > 0: a shape is at most 0.6 of the frame
    origin = start.x if dx else start.y
    sign = dx + dy  # +1 right/down, -1 left/up
    scenes = []
    for t in range(frames):
        free = (origin - low) + sign * speed * t
        phase = free % (2 * span)
        forward = phase < span  # on the outward leg of the unfolded line
        position = low + (phase if forward else 2 * span - phase)
        # The direction of travel at this frame: the start's while on the outward leg.
        moving = sign if forward else -sign
        if dx:
            scene = replace(start, x=position, direction="right" if moving > 0 else "left", speed=speed)
        else:
            scene = replace(start, y=position, direction="down" if moving > 0 else "up", speed=speed)
        scenes.append(scene)
    return tuple(scenes)


def _draw_scenes(
    rng: np.random.Generator,
    n: int,
    size: int,
    colour_names: list[str],
    shape_names: list[str],
) -> list[ShapeScene]:
    colour_index = rng.integers(0, len(colour_names), n)
    shape_index = rng.integers(0, len(shape_names), n)
    extents = rng.uniform(*SIZE_RANGE, n) * size
    # Centres that keep the whole shape inside the frame.
    xs = extents / 2 + rng.uniform(0.0, 1.0, n) * (size - extents)
    ys = extents / 2 + rng.uniform(0.0, 1.0, n) * (size - extents)
    jitter = rng.uniform(-COLOUR_JITTER, COLOUR_JITTER, (n, 3))
    backgrounds = _draw_backgrounds(rng, n)
    ends = _draw_backgrounds(rng, n)
    plain = rng.uniform(0.0, 1.0, n) >= GRADIENT_SHARE
    ends[plain] = backgrounds[plain]
    angles = rng.uniform(0.0, 2 * math.pi, n)
    scenes = []
    for i in range(n):
        colour = colour_names[int(colour_index[i])]
        rgb = np.clip(np.asarray(COLOURS[colour]) + jitter[i], 0.0, 1.0)
        scenes.append(
            ShapeScene(
                colour=colour,
                shape=shape_names[int(shape_index[i])],
                x=float(xs[i]),
                y=float(ys[i]),
                size=float(extents[i]),
                rgb=_triple(rgb),
                background=_triple(backgrounds[i]),
                background_end=_triple(ends[i]),
                gradient_angle=float(angles[i]),
            )
        )
    return scenes


def _draw_backgrounds(rng: np.random.Generator, n: int) -> np.ndarray:
    grey = rng.uniform(*BACKGROUND_GREY, (n, 1))
    tint = rng.uniform(-BACKGROUND_TINT, BACKGROUND_TINT, (n, 3))
    return np.clip(grey + tint, 0.0, 1.0)


def _triple(values: np.ndarray) -> RGB:
    return (float(values[0]), float(values[1]), float(values[2]))


def _render_batch(scenes: Sequence[ShapeScene], size: int) -> torch.Tensor:
    """Scenes to (N, 3, size, size): background, then the shape blended by its coverage."""

    def column(values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1)

    centre_x = column([s.x for s in scenes])
    centre_y = column([s.y for s in scenes])
    half = column([s.size / 2 for s in scenes])
    angle = column([s.gradient_angle for s in scenes])
    shape_index = torch.tensor([SHAPES.index(s.shape) for s in scenes]).view(-1, 1, 1)
    rgb = torch.tensor([s.rgb for s in scenes], dtype=torch.float32).view(-1, 3, 1, 1)
    start = torch.tensor([s.background for s in scenes], dtype=torch.float32).view(-1, 3, 1, 1)
    end = torch.tensor([s.background_end for s in scenes], dtype=torch.float32).view(-1, 3, 1, 1)

    # Pixel centres, so a shape centred at size / 2 sits symmetrically in the frame.
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    grid_y, grid_x = coords.view(1, size, 1), coords.view(1, 1, size)
    dx, dy = grid_x - centre_x, grid_y - centre_y

    distance = torch.empty(len(scenes), size, size)
    for index, shape in enumerate(SHAPES):
        chosen = (shape_index == index).view(-1)
        if chosen.any():
            distance[chosen] = _SIGNED_DISTANCE[shape](dx[chosen], dy[chosen], half[chosen])
    coverage = (0.5 - distance).clamp(0.0, 1.0).unsqueeze(1)

    along = (grid_x - size / 2) * torch.cos(angle) + (grid_y - size / 2) * torch.sin(angle)
    ramp = (along / size + 0.5).clamp(0.0, 1.0).unsqueeze(1)
    background = start + (end - start) * ramp
    return (background + (rgb - background) * coverage).clamp_(0.0, 1.0).contiguous()


# Signed distance in pixels (negative inside) of each shape of extent 2 * half around the
# centre. Edges are exact; corners are approximate, which only shifts the anti-aliasing.
def _circle(dx: torch.Tensor, dy: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(dx * dx + dy * dy) - half


def _square(dx: torch.Tensor, dy: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    # A little smaller than the extent, so that its area is close to the circle's.
    return torch.maximum(dx.abs(), dy.abs()) - 0.85 * half


def _triangle(dx: torch.Tensor, dy: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    # Equilateral, pointing up, centred on its centroid; its circumradius fits the width.
    radius = 1.1 * half
    inradius = radius / 2
    slant = math.sqrt(3) / 2
    bottom = dy - inradius
    right = slant * dx - 0.5 * dy - inradius
    left = -slant * dx - 0.5 * dy - inradius
    return torch.maximum(bottom, torch.maximum(right, left))


def _cross(dx: torch.Tensor, dy: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    arm = 0.95 * half
    thickness = 0.38 * half
    horizontal = torch.maximum(dx.abs() - arm, dy.abs() - thickness)
    vertical = torch.maximum(dx.abs() - thickness, dy.abs() - arm)
    return torch.minimum(horizontal, vertical)


_SIGNED_DISTANCE = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "cross": _cross,
}


def condition_image(height: int, width: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """One ``(3, size, size)`` scene drawn from ``generator``: an image-to-video condition.

    The signature is ``ExVideoSampler``'s ``image_source``, so the toy world's image-to-video
    model is conditioned on the kind of first frame it was trained on.
    """
    if height != width:
        raise ValueError(f"height, width: got {height}x{width}; toy world scenes are square")
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return sample_images(1, seed=seed, size=height)[0][0]


def _check_count(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < MIN_SIZE:
        raise ValueError(f"size must be an integer >= {MIN_SIZE}, got {size!r}")


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return seed


def _check_speed_range(speed_range: tuple[float, float]) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in speed_range)
    except (TypeError, ValueError):
        raise ValueError(f"speed_range must be a pair (low, high) of pixels per frame, got {speed_range!r}") from None
    if not (0.0 <= low <= high):
        raise ValueError(f"speed_range must satisfy 0 <= low <= high, got {speed_range!r}")
    return low, high


def _check_names(names: Sequence[str], allowed: Collection[str], parameter: str) -> None:
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise ValueError(f"{parameter}: unknown {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}")


def _names_or_all(names: Sequence[str] | None, allowed: Collection[str], parameter: str) -> list[str]:
    if names is None:
        return list(allowed)
    if isinstance(names, str):
        raise ValueError(f"{parameter} must be a list of names, got the string {names!r}")
    chosen = list(names)
    if not chosen:
        raise ValueError(f"{parameter} must name at least one of: {', '.join(allowed)}")
    _check_names(chosen, allowed, parameter)
    return chosen


__all__ = [
    "COLOURS",
    "DIRECTIONS",
    "DIRECTION_VECTORS",
    "IMAGE_SIZE",
    "MOTIONS",
    "SHAPES",
    "ShapeScene",
    "bouncing_clips",
    "caption",
    "captions",
    "render",
    "sample_images",
    "sample_videos",
    "video_caption",
    "video_captions",
    "vocabulary",
]
