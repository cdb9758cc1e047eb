"""The parser metrics on the control videos: each defect moves its metric the right way, by a
margin derived from the controls' geometry and the parser's stated accuracy
(test_toy_parser.py), never from a run.

Controls: 8 frames of 32x32, the defect from frame k = 4 on; the shape has extent 12 px and
moves 1.5 px per frame (controls.py).
"""

from __future__ import annotations

import math
from importlib import metadata

import numpy as np
import pluggy
import pytest
import torch

from pytest_ablation.harness import hookspecs, plugin
from pytest_ablation.metrics.inputs import MetricInput
from pytest_ablation.metrics.registry import get_metric
from pytest_ablation.toyworld import controls
from pytest_ablation.toyworld.controls import CONTROLS, change_frame, control_video
from pytest_ablation.toyworld.data import COLOURS, IMAGE_SIZE
from pytest_ablation.toyworld.metrics import TOY_METRICS
from pytest_ablation.toyworld.scene_metrics import gap_slope

FRAMES = 8
SIZE = IMAGE_SIZE
K = change_frame(FRAMES)
SEEDS = (0, 1, 2, 3)
NAMES = ("identity_constancy", "trajectory_jerk", "background_drift", "warping_error", "drift_vs_gap")

# The parser's accuracy on clean frames (test_toy_parser.py): centroid within 0.1 px,
# background field within 0.02 (mean RGB distance per pixel), colour and shape exact.
CENTROID_PX = 0.10
BACKGROUND_ERROR = 0.02

# Third difference of a track: a jump J in one step shows as J, 2J, J in the three windows
# that hold it, nothing elsewhere; each centroid error of at most e moves a window's value by
# at most (1 + 3 + 3 + 1) e = 8 e. Over the frame's side:
JERK_SMOOTH_MAX = 8 * CENTROID_PX / SIZE
JERK_TELEPORT_GAIN = 4 * controls.JUMP / (FRAMES - 3) - 2 * JERK_SMOOTH_MAX

# A swap from frame k on: frames k..F-1 disagree with frame 0, of F-1 compared.
CONSTANCY_DROP = (FRAMES - K) / (FRAMES - 1)

# The background moves by BACKGROUND_STEP per channel from frame k; a step down clipped at 0
# still moves each channel by at least 0.23 (a channel starts at 0.29 - 0.06 or more).
BACKGROUND_DRIFT_GAIN = (FRAMES - K) / (FRAMES - 1) * 0.23 * math.sqrt(3) - 2 * BACKGROUND_ERROR

# Plain flicker of steady motion: a shift by v px changes, in each row the shape spans, at
# least 2 v pixels (entering and leaving edges); every shape spans at least 1.65 half-extents
# of rows (the triangle's height); each changed pixel differs by at least 0.30 / 3 per channel
# on average (a colour contrast of 0.30, Euclidean, is at least 0.30 summed over channels).
HALF = controls.EXTENT * SIZE / 2
FLICKER_OF_MOTION = 2 * controls.SPEED * 1.65 * HALF * 0.30 / 3 / (SIZE * SIZE)
# What compensation leaves of it: bilinear interpolation of a one-pixel edge ramp errs by at
# most 1/4 of the contrast at each of the ramp's two kinks, i.e. 1/2 per edge crossing, where
# the motion changes v per crossing; a centroid error e misplaces e more. Hence at most
# (1/2 + e) / v of the motion's flicker remains.
COMPENSATION_LEFT = (0.5 + CENTROID_PX) / controls.SPEED


def scores(kind: str, seed: int) -> dict:
    video, _ = control_video(kind, frames=FRAMES, size=SIZE, seed=seed)
    inp = MetricInput(video)
    return {spec.name: spec.evaluate(inp) for spec in TOY_METRICS}


@pytest.fixture(scope="module")
def table() -> dict:
    return {(kind, seed): scores(kind, seed) for kind in CONTROLS for seed in SEEDS}


def value(table, kind, seed, name) -> float:
    return table[(kind, seed)][name].value


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.slow
def test_teleport_raises_trajectory_jerk(table, seed):
    smooth = value(table, "smooth", seed, "trajectory_jerk")
    assert smooth <= JERK_SMOOTH_MAX
    assert value(table, "teleport", seed, "trajectory_jerk") - smooth >= JERK_TELEPORT_GAIN


@pytest.mark.parametrize("seed", SEEDS)
def test_identity_and_colour_swaps_lower_identity_constancy(table, seed):
    assert value(table, "smooth", seed, "identity_constancy") == 1.0
    for kind, kept, lost in (
        ("identity_swap", "colour_constancy", "shape_constancy"),
        ("colour_swap", "shape_constancy", "colour_constancy"),
    ):
        score = table[(kind, seed)]["identity_constancy"]
        assert 1.0 - score.value >= CONSTANCY_DROP - 1e-9, kind
        # The swap is read as what it is: the other half of the identity stays.
        assert score.details[kept] == 1.0 and score.details[lost] <= 1 - CONSTANCY_DROP + 1e-9


@pytest.mark.parametrize("seed", SEEDS)
def test_colour_swap_raises_drift_vs_gap(table, seed):
    # Pairs (t, t+g) that straddle the swap differ by the colours' distance, others by (about)
    # nothing: the slope of that indicator against g, times the smallest distance between
    # consecutive named colours (the swap's target is the next colour), halved for the
    # parser's colour estimate.
    straddles = np.array([[float(t < K <= t + g) for g in range(1, FRAMES)] for t in range(FRAMES)])
    pairs = [(g, straddles[t, g - 1]) for g in range(1, FRAMES) for t in range(FRAMES - g)]
    g, d = np.array(pairs).T
    indicator_slope = ((g - g.mean()) * (d - d.mean())).sum() / ((g - g.mean()) ** 2).sum()
    named = np.array(list(COLOURS.values()))
    closest = min(np.linalg.norm(named[i] - named[(i + 1) % len(named)]) for i in range(len(named)))
    gain = value(table, "colour_swap", seed, "drift_vs_gap") - value(table, "smooth", seed, "drift_vs_gap")
    assert indicator_slope > 0 and gain >= 0.5 * closest * indicator_slope


@pytest.mark.parametrize("seed", SEEDS)
def test_background_change_raises_background_drift(table, seed):
    smooth = value(table, "smooth", seed, "background_drift")
    assert smooth <= 2 * BACKGROUND_ERROR
    assert value(table, "background_change", seed, "background_drift") - smooth >= BACKGROUND_DRIFT_GAIN


@pytest.mark.parametrize("seed", SEEDS)
def test_compensation_makes_still_and_smooth_alike_where_plain_flicker_tells_them_apart(table, seed):
    still, smooth = table[("still", seed)]["warping_error"], table[("smooth", seed)]["warping_error"]
    flicker_gap = smooth.details["flicker_uncompensated"] - still.details["flicker_uncompensated"]
    assert flicker_gap >= FLICKER_OF_MOTION
    assert abs(smooth.value - still.value) <= COMPENSATION_LEFT * flicker_gap
    # The defects the other metrics catch leave smoothness alone, and vice versa.
    assert value(table, "teleport", seed, "background_drift") <= 2 * BACKGROUND_ERROR
    assert value(table, "background_change", seed, "identity_constancy") == 1.0


def test_a_still_video_has_no_jerk_no_drift_and_no_flicker(table):
    for seed in SEEDS:
        row = table[("still", seed)]
        # Identical frames parse identically; what is left is float64 rounding.
        for name in ("trajectory_jerk", "warping_error", "background_drift", "drift_vs_gap"):
            assert row[name].value == pytest.approx(0.0, abs=1e-12), name


# -- formulas on inputs with a known answer -----------------------------------------------
def test_without_an_object_warping_error_is_plain_flicker_and_the_track_metrics_are_nan():
    # Plain frames getting brighter: nothing to move, so compensation changes nothing.
    video = torch.linspace(0.2, 0.4, 6).view(6, 1, 1, 1).expand(6, 3, SIZE, SIZE).contiguous()
    inp = MetricInput(video)
    warping = get_toy("warping_error").evaluate(inp)
    assert warping.value == pytest.approx(warping.details["flicker_uncompensated"], abs=1e-9)
    assert warping.value == pytest.approx(0.04, abs=1e-6)  # 0.2 over 5 steps
    assert math.isnan(get_toy("trajectory_jerk").evaluate(inp).value)
    assert get_toy("identity_constancy").evaluate(inp).value == 0.0
    assert get_toy("background_drift").evaluate(inp).value > 0.1


def test_gap_slope_is_the_rate_of_steady_change_and_zero_for_none():
    steady = np.outer(np.arange(6, dtype=float), [0.1, 0.0, 0.0, 0.0])
    slope, by_gap = gap_slope(steady)
    assert slope == pytest.approx(0.1) and by_gap[3] == pytest.approx(0.3)
    assert gap_slope(np.ones((6, 4)))[0] == 0.0
    assert math.isnan(gap_slope(np.full((6, 4), np.nan))[0])


def test_the_plain_functions_give_the_registered_values(table):
    from pytest_ablation.toyworld import scene_metrics

    video, _ = control_video("colour_swap", frames=FRAMES, size=SIZE, seed=1)
    for name in NAMES:
        assert getattr(scene_metrics, name)(video) == value(table, "colour_swap", 1, name), name


def test_metrics_need_enough_frames():
    video, _ = control_video("smooth", frames=4, size=SIZE)
    with pytest.raises(ValueError, match="trajectory_jerk"):
        get_toy("trajectory_jerk").evaluate(MetricInput(video[:3]))
    with pytest.raises(ValueError, match="unknown control"):
        control_video("wobble")


def test_the_control_table_has_a_row_per_control_and_a_column_per_metric():
    lines = controls.control_table(seeds=1, judge=False).splitlines()
    assert lines[0].split(" | ")[1:6] == list(NAMES)
    rows = {line.split(" | ")[0].strip("| "): line for line in lines[2:]}
    assert list(rows) == list(CONTROLS)
    jerk = {kind: float(line.split(" | ")[2]) for kind, line in rows.items()}
    assert jerk["teleport"] - jerk["smooth"] >= JERK_TELEPORT_GAIN


# -- registration -------------------------------------------------------------------------
def get_toy(name: str):
    return next(spec for spec in TOY_METRICS if spec.name == name)


def test_the_metrics_are_declared_with_direction_tolerance_and_no_model():
    assert tuple(spec.name for spec in TOY_METRICS) == NAMES
    directions = {spec.name: spec.direction for spec in TOY_METRICS}
    assert directions == {
        "identity_constancy": "higher",
        "trajectory_jerk": "lower",
        "background_drift": "lower",
        "warping_error": "lower",
        "drift_vs_gap": "lower",
    }
    for spec in TOY_METRICS:
        # needs = [] and no weights: usable on any profile, `toy` included.
        assert spec.needs == frozenset() and spec.weights == () and spec.tolerance > 0
        assert spec.definition and "parser" in spec.backend


def test_the_toy_world_registers_them_through_its_own_pytest_plugin(pytestconfig):
    entry = {e.name: e for e in metadata.entry_points(group="pytest11")}["ablation-toyworld"]
    assert entry.value == "pytest_ablation.toyworld.plugin"
    manager = pluggy.PluginManager("pytest")
    manager.add_hookspecs(hookspecs)
    manager.register(plugin, "ablation")
    manager.register(entry.load(), "ablation-toyworld")
    registered = {}
    manager.hook.pytest_ablation_add_metrics(register=lambda s: registered.__setitem__(s.name, s))
    assert set(NAMES) <= set(registered) and "temporal_flickering" in registered
    # This very session loaded the plugin: the names resolve in its own registry, and only
    # there (the built-in metrics are not amended process-wide).
    run_metrics = pytestconfig.stash[plugin._SESSION].metrics
    assert run_metrics.get("warping_error") is get_toy("warping_error")
    with pytest.raises(ValueError, match="unknown metric 'warping_error'"):
        get_metric("warping_error")
