"""The toy world's parser metrics: what the scene parser (``parser.py``) reads from each frame,
turned into temporal scores. Each ``evaluate_<name>(MetricInput) -> Score``; the specs
(direction, tolerance, definition) are in ``metrics.py``.

One video is parsed once for all of them (memoised per ``MetricInput``). Only meaningful on
toy-world videos: on other videos the parser finds no palette object, or a wrong one.
"""

from __future__ import annotations

import math
import weakref

import cv2
import numpy as np
import torch

from pytest_ablation.metrics.inputs import MetricInput
from pytest_ablation.metrics.registry import Score
from pytest_ablation.toyworld.parser import FrameParse, parse_video

_PARSES: weakref.WeakKeyDictionary[MetricInput, list[FrameParse]] = weakref.WeakKeyDictionary()


def parses(inp: MetricInput) -> list[FrameParse]:
    """Every frame of the input's video parsed, computed once per ``MetricInput``."""
    found = _PARSES.get(inp)
    if found is None:
        found = _PARSES[inp] = parse_video(inp.video)
    return found


def _centroids(frames: list[FrameParse]) -> np.ndarray:
    """(F, 2): the object's centroid over the frame's width and height (NaN where none)."""
    return np.array([(f.object.x / f.width, f.object.y / f.height) for f in frames])


# -- identity_constancy -------------------------------------------------------------------
def evaluate_identity_constancy(inp: MetricInput) -> Score:
    inp.require("identity_constancy", min_frames=2)
    frames = parses(inp)
    first = frames[0].object
    # A frame agrees when it shows an object of frame 0's colour and shape; a frame without
    # an object, or a first frame without one, agrees with nothing.
    agree = [float(first.found and f.object.found and f.object.identity == first.identity) for f in frames[1:]]
    colour = [float(first.found and f.object.colour == first.colour) for f in frames[1:]]
    shape = [float(first.found and f.object.shape == first.shape) for f in frames[1:]]
    return Score(
        float(np.mean(agree)),
        tuple(agree),
        {
            "per": "frame after the first",
            "first": list(first.identity),
            "colour_constancy": float(np.mean(colour)),
            "shape_constancy": float(np.mean(shape)),
        },
    )


# -- trajectory_jerk ----------------------------------------------------------------------
def evaluate_trajectory_jerk(inp: MetricInput) -> Score:
    inp.require("trajectory_jerk", min_frames=4)
    track = _centroids(parses(inp))
    # Third difference c[t+3] - 3 c[t+2] + 3 c[t+1] - c[t]: zero for any path of constant
    # velocity or constant acceleration; a jump of D in one step gives D, 2D, D in the three
    # windows that hold it.
    third = track[3:] - 3 * track[2:-1] + 3 * track[1:-2] - track[:-3]
    magnitude = np.linalg.norm(third, axis=1)
    valid = np.isfinite(magnitude)
    # NaN when no window of four frames all show the object: nothing to measure.
    value = float(magnitude[valid].mean()) if valid.any() else math.nan
    return Score(
        value,
        tuple(magnitude.tolist()),
        {"per": "window of four frames", "windows_without_object": int((~valid).sum())},
    )


# -- background_drift ---------------------------------------------------------------------
def evaluate_background_drift(inp: MetricInput) -> Score:
    inp.require("background_drift", min_frames=2)
    frames = parses(inp)
    first = frames[0].background_field()
    # The fitted field, not the pixels: the object moving over the background is no drift.
    per_frame = [float(np.linalg.norm(f.background_field() - first, axis=2).mean()) for f in frames[1:]]
    return Score(
        float(np.mean(per_frame)),
        tuple(per_frame),
        {"per": "frame after the first", "patterns": [f.background.pattern for f in frames]},
    )


# -- warping_error ------------------------------------------------------------------------
def compensated_prediction(current: FrameParse, following: FrameParse) -> np.ndarray:
    """Frame t+1 predicted from frame t by moving only the object.

    With ``B_t`` frame t's fitted background, ``R_t = f_t - B_t`` its residual and ``L_t``
    the object's layer (its region grown by the parser's band), the prediction is

        P_t(p) = B_t(p) + (1 - L_t(p)) R_t(p) + (L_t R_t)(p - d_t)

    where ``d_t`` is the parsed displacement of the centroid from t to t+1 (0 when either
    frame shows no object) and the shift is bilinear. Only the object's layer moves; the
    background and anything else stays where it was.
    """
    obj, nxt = current.object, following.object
    dx, dy = (nxt.x - obj.x, nxt.y - obj.y) if obj.found and nxt.found else (0.0, 0.0)
    residual = current.residual
    layer = current.layer[..., None]
    moving = residual * layer  # float64 throughout: no shift leaves it exactly as it was
    shift = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], dtype=np.float64)
    moved = cv2.warpAffine(
        moving,
        shift,
        (current.width, current.height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return current.background_field() + residual * (~layer) + moved


def evaluate_warping_error(inp: MetricInput) -> Score:
    inp.require("warping_error", min_frames=2)
    frames = parses(inp)
    pixels = inp.video.detach().cpu().to(torch.float64).permute(0, 2, 3, 1).numpy()
    per_pair, flicker = [], []
    for t in range(len(frames) - 1):
        predicted = compensated_prediction(frames[t], frames[t + 1])
        per_pair.append(float(np.abs(pixels[t + 1] - predicted).mean()))
        flicker.append(float(np.abs(pixels[t + 1] - pixels[t]).mean()))
    return Score(
        float(np.mean(per_pair)), tuple(per_pair), {"per": "pair", "flicker_uncompensated": float(np.mean(flicker))}
    )


# -- drift_vs_gap -------------------------------------------------------------------------
def appearance(frame: FrameParse) -> np.ndarray:
    """The object's appearance: its colour (RGB) and the square root of its area over the
    frame's larger side (a length, in the same 0-1 range); NaN where there is no object."""
    obj = frame.object
    return np.array([*obj.rgb, math.sqrt(obj.area) / max(frame.width, frame.height)] if obj.found else [math.nan] * 4)


def gap_slope(values: np.ndarray) -> tuple[float, dict[int, float]]:
    """Least-squares slope of ``|v[t+g] - v[t]|`` against ``g`` over every pair of frames
    (t, t+g) where both are finite, and the mean distance at each gap."""
    gaps, distances = [], []
    for gap in range(1, len(values)):
        d = np.linalg.norm(values[gap:] - values[:-gap], axis=1)
        keep = np.isfinite(d)
        gaps += [gap] * int(keep.sum())
        distances += d[keep].tolist()
    by_gap = {g: float(np.mean([d for gg, d in zip(gaps, distances) if gg == g])) for g in sorted(set(gaps))}
    if len(by_gap) < 2:
        return math.nan, by_gap
    g = np.asarray(gaps, dtype=np.float64)
    d = np.asarray(distances)
    return float(((g - g.mean()) * (d - d.mean())).sum() / ((g - g.mean()) ** 2).sum()), by_gap


def evaluate_drift_vs_gap(inp: MetricInput) -> Score:
    inp.require("drift_vs_gap", min_frames=3)
    frames = parses(inp)
    slope, by_gap = gap_slope(np.stack([appearance(f) for f in frames]))
    # Position is reported, not scored: a moving object's distance grows with the gap by
    # design, so scoring it would call every motion drift.
    position_slope, _ = gap_slope(_centroids(frames))
    return Score(
        slope,
        tuple(by_gap.values()),
        {"per": "gap (1, 2, ...): mean appearance distance", "position_slope": position_slope},
    )


# -- plain functions of a video (F, 3, H, W) in [0, 1], as the core metrics have ------------
def identity_constancy(video: torch.Tensor) -> float:
    return evaluate_identity_constancy(MetricInput(video)).value


def trajectory_jerk(video: torch.Tensor) -> float:
    return evaluate_trajectory_jerk(MetricInput(video)).value


def background_drift(video: torch.Tensor) -> float:
    return evaluate_background_drift(MetricInput(video)).value


def warping_error(video: torch.Tensor) -> float:
    return evaluate_warping_error(MetricInput(video)).value


def drift_vs_gap(video: torch.Tensor) -> float:
    return evaluate_drift_vs_gap(MetricInput(video)).value
