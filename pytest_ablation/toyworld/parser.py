"""An exact scene parser for toy-world frames: the object's position, size, colour and shape,
and the background, read back from the pixels.

It inverts how ``data.py`` draws a frame, so it needs no learned model:

1. **Background.** A background is ``start + (end - start) * ramp``, the ramp running from 0
   to 1 across the frame along ``gradient_angle`` (clamped at the corners), ``start == end``
   for a plain one, and backgrounds are greys with a small tint while every named colour is
   saturated. The parser takes the low-chroma pixels as background candidates, fits an affine
   field to them, reads the gradient's direction from it, then fits ``start`` and ``end``
   exactly with data.py's clamped ramp (and refines the angle), dropping pixels that lie far
   from the current fit at each round.
2. **Object.** A pixel belongs to an object when, after a 3x3 mean of the residual ``frame -
   background`` (which divides pixel noise by three), it lies more than ``TOLERANCE`` from the
   background. Every named colour, jittered as data.py jitters it, stays more than 0.30 (RGB,
   Euclidean) from every possible background, so ``TOLERANCE = 0.15`` takes the pixels a
   shape covers about half of or more, and leaves background noise of up to about 0.05 per
   channel out. Each 8-connected region of such pixels covering at least ``MIN_AREA_SHARE`` of
   the frame is an object; the largest is the scene's object.
3. **Measures.** The object's colour is the mean of its most saturated (core) pixels; its
   coverage of each pixel is the projection of the residual onto ``colour - background``, over
   the region grown by ``BAND`` pixels (so that a blur's tails count). Area and centroid are
   the sum and the weighted mean of that coverage: both are linear in the pixels, so
   zero-mean noise does not bias them and a blur (which keeps sums and centres) does not move
   them. The colour's name is the nearest named colour; the shape is the one whose rendering
   at that centroid and area (optionally blurred) best matches the coverage.

Nothing found is not an error: the object's numeric fields are NaN, its names None and
``found`` False.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch

from pytest_ablation.toyworld.data import COLOURS, SHAPES, ShapeScene, render

# RGB (Euclidean) distance from the background beyond which a pixel is an object's: half the
# smallest distance (0.30) between a jittered named colour and any background data.py draws.
TOLERANCE = 0.15
# Pixels whose channels spread by less than this are background candidates at the start:
# a background's tint spreads its channels by at most 0.12, every named colour's by 0.55 or
# more; the margin between takes pixel noise of about 0.05 per channel.
CHROMA_LIMIT = 0.35
# A region must cover this share of the frame to be an object: a third of the smallest shape
# data.py draws (a triangle of extent 0.3 covers about 3.5%), far above noise speckles.
MIN_AREA_SHARE = 0.01
# Pixels around an object's region over which its coverage is summed: a Gaussian blur of
# sigma up to 1 pixel spreads an edge over about two pixels.
BAND = 2
# A background whose ends differ by less than this (RGB, Euclidean) is reported plain.
PLAIN_LIMIT = 0.04
# Blurs (Gaussian sigma, pixels) the shape templates are tried at, for blurry frames.
TEMPLATE_BLURS = (0.0, 0.7, 1.4)

# Area of each shape in units of (extent / 2) ** 2, from data.py's signed distances:
# circle pi; square (1.7)^2; triangle (3 sqrt 3 / 4) (1.1)^2; cross 2 (1.9)(0.76) - 0.76^2.
AREA_FACTOR: dict[str, float] = {
    "circle": math.pi,
    "square": 1.7**2,
    "triangle": 3 * math.sqrt(3) / 4 * 1.1**2,
    "cross": 2 * 1.9 * 0.76 - 0.76**2,
}

RGB = tuple[float, float, float]
Frame = torch.Tensor | np.ndarray
_NAN3: RGB = (math.nan, math.nan, math.nan)
_PALETTE = np.array(list(COLOURS.values()))
_PALETTE_NAMES = list(COLOURS)


@dataclass(frozen=True)
class Background:
    """The fitted background: ``start`` to ``end`` along ``angle`` (radians), as data.py
    draws it; ``pattern`` is ``"plain"`` when the ends (nearly) agree, else ``"gradient"``;
    ``mean``: its mean colour over the frame."""

    start: RGB
    end: RGB
    angle: float
    pattern: str
    mean: RGB

    def field(self, height: int, width: int) -> np.ndarray:
        """(height, width, 3) float64: the background's colour at every pixel."""
        ramp = _ramp(height, width, self.angle)
        start, end = np.asarray(self.start), np.asarray(self.end)
        return start + (end - start) * ramp[..., None]


@dataclass(frozen=True)
class ParsedObject:
    """One object: centroid ``x``, ``y`` in pixels (data.py's convention: pixel centres at
    +0.5, y down); ``area``: its coverage summed, in pixels; ``bbox``: ``(x0, y0, x1, y1)``,
    the edges of the pixels it covers at least half of; ``size``: its extent as data.py's
    ``ShapeScene.size``, from the area and the shape; ``rgb``: its colour as painted;
    ``colour``, ``shape``: the names; ``colour_distance``: from ``rgb`` to the named colour."""

    x: float
    y: float
    area: float
    bbox: tuple[float, float, float, float]
    size: float
    rgb: RGB
    colour: str | None
    shape: str | None
    colour_distance: float
    found: bool = True

    @property
    def identity(self) -> tuple[str | None, str | None]:
        return (self.colour, self.shape)


NOT_FOUND = ParsedObject(
    x=math.nan,
    y=math.nan,
    area=math.nan,
    bbox=(math.nan,) * 4,
    size=math.nan,
    rgb=_NAN3,
    colour=None,
    shape=None,
    colour_distance=math.nan,
    found=False,
)


@dataclass(frozen=True)
class FrameParse:
    """A parsed frame: the background and the objects, largest first. ``object`` is the
    largest (the toy world draws one), or ``NOT_FOUND``. For metrics that move the object's
    layer: ``coverage`` (H, W), how much of each pixel the largest object covers; ``layer``
    (H, W) bool, the pixels its coverage was summed over (its region grown by ``BAND``);
    ``residual`` (H, W, 3) float64, ``frame - background``."""

    height: int
    width: int
    background: Background
    objects: tuple[ParsedObject, ...]
    coverage: np.ndarray
    layer: np.ndarray
    residual: np.ndarray

    @property
    def object(self) -> ParsedObject:
        return self.objects[0] if self.objects else NOT_FOUND

    def background_field(self) -> np.ndarray:
        return self.background.field(self.height, self.width)


def parse_frame(frame: Frame) -> FrameParse:
    """Parse one RGB frame: (3, H, W) or (H, W, 3); float in [0, 1] (values outside are
    clipped) or uint8."""
    pixels = as_pixels(frame)
    height, width, _ = pixels.shape
    background = fit_background(pixels)
    field = background.field(height, width)
    residual = pixels - field
    smoothed = cv2.blur(residual.astype(np.float32), (3, 3), borderType=cv2.BORDER_REFLECT)
    mask = (np.linalg.norm(smoothed, axis=2) > TOLERANCE).astype(np.uint8)
    count, labels = cv2.connectedComponents(mask, connectivity=8)
    min_area = MIN_AREA_SHARE * height * width
    objects: list[tuple[ParsedObject, np.ndarray, np.ndarray]] = []
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * BAND + 1, 2 * BAND + 1))
    for index in range(1, count):  # 0 is the background
        region = labels == index
        band = cv2.dilate(region.astype(np.uint8), kernel).astype(bool)
        band &= (labels == 0) | region  # never another region's pixels
        parsed = _measure(pixels, field, residual, region, band, min_area)
        if parsed is not None:
            objects.append(parsed)
    objects.sort(key=lambda item: -item[0].area)  # the largest first
    if objects:
        coverage, layer = objects[0][1], objects[0][2]
    else:
        coverage, layer = np.zeros((height, width)), np.zeros((height, width), dtype=bool)
    return FrameParse(
        height=height,
        width=width,
        background=background,
        objects=tuple(item[0] for item in objects),
        coverage=coverage,
        layer=layer,
        residual=residual,
    )


def parse_video(video: Frame) -> list[FrameParse]:
    """Parse every frame of a video (F, 3, H, W) or (F, H, W, 3)."""
    if video.ndim != 4:
        raise ValueError(f"video must have 4 dimensions (frames first), got shape {tuple(video.shape)}")
    return [parse_frame(frame) for frame in video]


def as_pixels(frame: Frame) -> np.ndarray:
    """One frame as (H, W, 3) float64 in [0, 1]; (3, H, W) and uint8 are converted."""
    if isinstance(frame, torch.Tensor):
        tensor = frame.detach().cpu()
        # numpy has no bfloat16: half-precision frames are read as float32.
        array = (tensor.float() if tensor.is_floating_point() else tensor).numpy()
    elif isinstance(frame, np.ndarray):
        array = frame
    else:
        raise TypeError(f"frame must be a torch.Tensor or numpy array, got {type(frame).__name__}")
    if array.ndim != 3 or 3 not in (array.shape[0], array.shape[-1]):
        raise ValueError(f"frame must be (3, H, W) or (H, W, 3), got shape {tuple(array.shape)}")
    if array.shape[-1] != 3:  # (3, H, W): a frame is at least 8 pixels wide, never 3
        array = np.moveaxis(array, 0, -1)
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"frame must be uint8 or floating point, got {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError("frame holds NaN or infinite values")
    return np.clip(array, 0.0, 1.0)


def nearest_colour(rgb: np.ndarray) -> tuple[str, float]:
    """The named colour nearest ``rgb`` (RGB, Euclidean) and the distance to it."""
    distances = np.linalg.norm(_PALETTE - np.asarray(rgb, dtype=np.float64), axis=1)
    index = int(distances.argmin())
    return _PALETTE_NAMES[index], float(distances[index])


# -- background ---------------------------------------------------------------------------
def _ramp(height: int, width: int, angle: float) -> np.ndarray:
    """data.py's ramp: 0 to 1 across the frame along ``angle``, clamped."""
    size = max(height, width)  # data.py draws square frames; this keeps the ramp's scale
    ys = np.arange(height, dtype=np.float64)[:, None] + 0.5
    xs = np.arange(width, dtype=np.float64)[None, :] + 0.5
    along = (xs - width / 2) * math.cos(angle) + (ys - height / 2) * math.sin(angle)
    return np.clip(along / size + 0.5, 0.0, 1.0)


def fit_background(pixels: np.ndarray) -> Background:
    """The background of an (H, W, 3) frame in [0, 1] (see the module's docstring)."""
    height, width, _ = pixels.shape
    flat = pixels.reshape(-1, 3)
    chroma = flat.max(axis=1) - flat.min(axis=1)
    keep = chroma < CHROMA_LIMIT
    if keep.sum() < 0.25 * keep.size:  # a frame mostly saturated: start from every pixel
        keep = np.ones_like(keep)
    ys, xs = np.mgrid[0:height, 0:width]
    scale = max(height, width)
    design = np.stack(
        [np.ones(height * width), (xs.ravel() + 0.5 - width / 2) / scale, (ys.ravel() + 0.5 - height / 2) / scale],
        axis=1,
    )
    for _ in range(2):  # affine fit, then again without the pixels far from it
        coefficients = np.linalg.lstsq(design[keep], flat[keep], rcond=None)[0]
        distance = np.linalg.norm(flat - design @ coefficients, axis=1)
        keep = _refit_set(distance, keep)
    # The gradient's direction: the principal axis of the per-channel gradients.
    gradients = coefficients[1:].T  # (3 channels, 2)
    _, _, vt = np.linalg.svd(gradients)
    angle = math.atan2(vt[0, 1], vt[0, 0])
    best: tuple[float, float, np.ndarray, np.ndarray] | None = None
    for _ in range(2):
        for trial in angle + np.linspace(-0.2, 0.2, 9):
            ramp = _ramp(height, width, float(trial)).ravel()
            ends = np.stack([1.0 - ramp, ramp], axis=1)
            solution = np.linalg.lstsq(ends[keep], flat[keep], rcond=None)[0]
            error = float(np.linalg.norm(flat[keep] - ends[keep] @ solution, axis=1).mean())
            if best is None or error < best[0]:
                best = (error, float(trial), solution, ends)
        assert best is not None  # the first trial always sets it
        _, angle, solution, ends = best
        keep = _refit_set(np.linalg.norm(flat - ends @ solution, axis=1), keep)
    start, end = np.clip(solution[0], 0.0, 1.0), np.clip(solution[1], 0.0, 1.0)
    if np.linalg.norm(end - start) < PLAIN_LIMIT:
        plain = flat[keep].mean(axis=0)
        start = end = np.clip(plain, 0.0, 1.0)
        pattern = "plain"
    else:
        pattern = "gradient"
    background = Background(
        start=_triple(start),
        end=_triple(end),
        angle=float(angle),
        pattern=pattern,
        mean=_NAN3,
    )
    mean = background.field(height, width).reshape(-1, 3).mean(axis=0)
    return replace(background, mean=_triple(mean))


def _refit_set(distance: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """The pixels the next fit uses: within ``TOLERANCE`` of this one; the previous set when
    too few are (a frame the model filled with one saturated colour)."""
    close = distance < TOLERANCE
    return close if close.sum() >= 0.25 * close.size else previous


# -- objects ------------------------------------------------------------------------------
def _measure(
    pixels: np.ndarray,
    field: np.ndarray,
    residual: np.ndarray,
    region: np.ndarray,
    band: np.ndarray,
    min_area: float,
) -> tuple[ParsedObject, np.ndarray, np.ndarray] | None:
    """The region's object, with its coverage and layer; None when it covers less than
    ``min_area`` pixels (a speck of noise, not an object)."""
    height, width, _ = pixels.shape
    strength = np.linalg.norm(residual, axis=2)
    inside = strength[region]
    # The core: the pixels the object covers fully, read as its colour.
    core = region & (strength >= 0.75 * np.percentile(inside, 95))
    rgb = pixels[core].mean(axis=0)
    contrast = rgb[None, None, :] - field
    norm2 = (contrast**2).sum(axis=2)
    norm2 = np.where(norm2 > 1e-6, norm2, np.inf)
    # Not clamped: a linear estimate keeps zero-mean noise from biasing area and centroid.
    coverage = np.where(band, (residual * contrast).sum(axis=2) / norm2, 0.0)
    area = float(coverage.sum())
    if not area >= min_area:
        return None
    ys, xs = np.mgrid[0:height, 0:width]
    x = float((coverage * (xs + 0.5)).sum() / area)
    y = float((coverage * (ys + 0.5)).sum() / area)
    solid = band & (coverage >= 0.5)
    if solid.any():
        rows, cols = np.nonzero(solid)
        bbox = (float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))
    else:
        bbox = (math.nan,) * 4
    shape, extent = _classify(coverage, x, y, area, height, width)
    colour, distance = nearest_colour(rgb)
    parsed = ParsedObject(
        x=x,
        y=y,
        area=area,
        bbox=bbox,
        size=extent,
        rgb=_triple(rgb),
        colour=colour,
        shape=shape,
        colour_distance=distance,
    )
    return parsed, coverage, band


def _classify(coverage: np.ndarray, x: float, y: float, area: float, height: int, width: int) -> tuple[str, float]:
    """The shape whose rendering at (x, y) with this area best matches ``coverage``, and its
    extent. Each template is tried sharp and blurred, as a generated frame may be soft."""
    size = max(height, width)
    observed = np.zeros((size, size))
    observed[:height, :width] = np.clip(coverage, 0.0, 1.0)
    best: tuple[float, str, float] | None = None
    for shape in SHAPES:
        extent = 2 * math.sqrt(area / AREA_FACTOR[shape])
        template = _template(shape, x, y, extent, size)
        for sigma in TEMPLATE_BLURS:
            blurred = (
                template
                if sigma == 0
                else cv2.GaussianBlur(template, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_CONSTANT)
            )
            error = float(((blurred - observed) ** 2).sum())
            if best is None or error < best[0]:
                best = (error, shape, extent)
    assert best is not None
    return best[1], best[2]


def _template(shape: str, x: float, y: float, extent: float, size: int) -> np.ndarray:
    """The shape's coverage as data.py renders it: white on black, channel 0."""
    probe = ShapeScene(
        colour="red",
        shape=shape,
        x=x,
        y=y,
        size=extent,
        rgb=(1.0, 1.0, 1.0),
        background=(0.0, 0.0, 0.0),
        background_end=(0.0, 0.0, 0.0),
    )
    return render(probe, size)[0].numpy().astype(np.float64)


def _triple(values: np.ndarray) -> RGB:
    return (float(values[0]), float(values[1]), float(values[2]))


__all__ = [
    "AREA_FACTOR",
    "Background",
    "FrameParse",
    "NOT_FOUND",
    "ParsedObject",
    "TOLERANCE",
    "as_pixels",
    "fit_background",
    "nearest_colour",
    "parse_frame",
    "parse_video",
]
