"""A profile's [metrics.motion_smoothness] interpolator: checked by the metric's spec when a
run takes the profile, naming the setting; built once, on first use; the score follows the
interpolator."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from pytest_ablation.metrics import MetricInput, interpolator_choice
from pytest_ablation.metrics.dimensions import motion_smoothness as ms
from pytest_ablation.metrics.interpolators import LinearInterpolator
from pytest_ablation.metrics.registry import MetricRegistry
from pytest_ablation.profiles import load_profile

from conftest import grating

BASE = """
[profile]
name = "base"

[settings]
prompts = ["a cat"]
seeds = 1
frames = 5
steps = 1
height = 32
width = 32
guidance_scale = 1.0
fps = 8

[models.sd]
kind = "tiny-stable-diffusion"
"""

MODULE = """
calls = []


class Hold:
    name = "hold"

    def __call__(self, a, b):
        return a.clone()


def make():
    calls.append(1)
    return Hold()


def not_an_interpolator():
    return 42


NOT_CALLABLE = 3
"""


@pytest.fixture
def factories(tmp_path, monkeypatch):
    (tmp_path / "my_interps.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(interpolator_choice, "_BUILT", {})
    yield sys.modules.get("my_interps")
    sys.modules.pop("my_interps", None)


def _profile(tmp_path, table: str, name: str = "p.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(BASE + table))
    profile = load_profile(str(path))
    # What a run does with it at start-up, before any model loads.
    MetricRegistry.builtin().check_options(profile.metrics)
    return profile


def test_no_table_means_the_default_and_an_unchanged_profile_dict(tmp_path):
    profile = _profile(tmp_path, "")
    assert profile.metric_options("motion_smoothness") == {}
    assert "metrics" not in profile.to_dict()
    assert interpolator_choice.DEFAULT == ms.default_interpolator().name


@pytest.mark.parametrize("value", ["linear-blend", "flow-midwarp", "my_interps:make"])
def test_good_settings_load(tmp_path, factories, value):
    profile = _profile(tmp_path, f'[metrics.motion_smoothness]\ninterpolator = "{value}"\n')
    assert profile.metric_options("motion_smoothness") == {"interpolator": value}
    assert profile.to_dict()["metrics"] == {"motion_smoothness": {"interpolator": value}}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            '[metrics.motion_smoothness]\ninterpolator = "cubic"\n',
            r"metrics\.motion_smoothness\.interpolator: 'cubic' is not a built-in name",
        ),
        (
            "[metrics.motion_smoothness]\ninterpolator = 3\n",
            r"metrics\.motion_smoothness\.interpolator: expected .* got 3",
        ),
        (
            '[metrics.motion_smoothness]\ninterpolator = "nowhere_at_all:make"\n',
            r"interpolator: cannot import module 'nowhere_at_all'",
        ),
        (
            '[metrics.motion_smoothness]\ninterpolator = "my_interps:absent"\n',
            r"interpolator: module 'my_interps' has no 'absent'",
        ),
        (
            '[metrics.motion_smoothness]\ninterpolator = "my_interps:NOT_CALLABLE"\n',
            r"interpolator: 'my_interps:NOT_CALLABLE' is not callable",
        ),
        ("[metrics.motion_smoothness]\nsmoothing = 2\n", r"metrics\.motion_smoothness\.smoothing: unknown option"),
        ('[metrics.clip_score]\ninterpolator = "linear-blend"\n', r"metrics\.clip_score: no options for this metric"),
    ],
)
def test_bad_settings_stop_the_profile_naming_the_setting(tmp_path, factories, table, message):
    with pytest.raises(ValueError, match=message):
        _profile(tmp_path, table)
    # The factory is looked up, never called, while the profile loads.
    module = sys.modules.get("my_interps")
    assert module is None or module.calls == []


def test_a_child_profile_overrides_its_parents_choice(tmp_path, factories):
    _profile(tmp_path, '[metrics.motion_smoothness]\ninterpolator = "linear-blend"\n', "base.toml")
    child = tmp_path / "child.toml"
    child.write_text('[profile]\nname = "child"\nextends = "./base.toml"\n')
    assert load_profile(str(child)).metric_options("motion_smoothness") == {"interpolator": "linear-blend"}
    child.write_text(
        '[profile]\nname = "child"\nextends = "./base.toml"\n\n'
        '[metrics.motion_smoothness]\ninterpolator = "my_interps:make"\n'
    )
    assert load_profile(str(child)).metric_options("motion_smoothness") == {"interpolator": "my_interps:make"}


def test_the_factory_runs_once_on_first_use(factories):
    import my_interps

    lazy = interpolator_choice.LazyInterpolator("my_interps:make")
    assert my_interps.calls == []
    video = grating(frames=5, size=32, speed=2.0)
    held = ms.evaluate(MetricInput(video, interpolator=lazy))
    again = ms.evaluate(MetricInput(video, interpolator=lazy))
    assert my_interps.calls == [1]
    assert held.details["interpolator"] == "hold" and held.value == again.value
    # Holding the earlier frame predicts odd frame 2k+1 by frame 2k.
    frames = (video * 255).round().to(torch.int16)
    expected = [(255 - (frames[i] - frames[i - 1]).abs().float().mean().item()) / 255 for i in (1, 3)]
    assert held.per_frame == pytest.approx(expected, abs=1e-6)
    default = ms.evaluate(MetricInput(video))
    linear = ms.evaluate(MetricInput(video, interpolator=LinearInterpolator()))
    assert len({held.value, default.value, linear.value}) == 3


def test_a_factory_returning_no_interpolator_is_named(factories):
    lazy = interpolator_choice.LazyInterpolator("my_interps:not_an_interpolator")
    with pytest.raises(
        ValueError,
        match=r"metrics\.motion_smoothness\.interpolator: "
        r"'my_interps:not_an_interpolator' returned int",
    ):
        ms.evaluate(MetricInput(torch.rand(3, 3, 32, 32), interpolator=lazy))
