"""The metric registry: lookup, registration, and what every built-in declares."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pathlib import Path

from pytest_ablation.metrics import registry
from pytest_ablation.metrics.registry import (
    BUILTIN_MODULES,
    MetricRegistry,
    MetricSpec,
    Score,
    get_metric,
    metric_names,
)

BUILTINS = {
    "clip_score": "higher",
    "temporal_consistency": "higher",
    "video_coherence": "higher",
    "condition_consistency": "higher",
    "video_quality": "higher",
    "motion_smoothness": "higher",
    "temporal_flickering": "higher",
    "dynamic_degree": "info",
    "subject_consistency": "higher",
    "background_consistency": "higher",
    "aesthetic_quality": "higher",
    "imaging_quality": "higher",
    "dynamic_degree_vbench": "info",
    "fvd": "lower",
}
# The metrics that bring their own model, and the weight files each needs.
OWN_WEIGHTS = {
    "subject_consistency": ("dino-vitb16",),
    "background_consistency": ("clip-vitb32",),
    "aesthetic_quality": ("clip-vitl14", "laion-aesthetic-vitl14"),
    "imaging_quality": ("musiq",),
    "dynamic_degree_vbench": ("raft-large",),
    "fvd": ("i3d",),
}


def _spec(name="my_metric", **overrides):
    fields = dict(
        name=name,
        direction="higher",
        tolerance=0.1,
        definition="a test metric",
        source="this test",
        needs=frozenset(),
        version="1",
        evaluate=lambda inp: Score(1.0),
    )
    fields.update(overrides)
    return MetricSpec(**fields)


def test_builtins_are_registered_with_their_direction():
    assert set(BUILTINS) <= set(metric_names())
    for name, direction in BUILTINS.items():
        assert get_metric(name).direction == direction


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_is_fully_described(name):
    spec = get_metric(name)
    assert spec.name == name
    assert spec.tolerance > 0
    assert spec.definition and "\n" not in spec.definition
    assert spec.source
    assert spec.version
    assert spec.needs <= {"text", "image", "clip"}
    assert callable(spec.evaluate)


def test_the_builtins_with_their_own_model_declare_registered_weight_files():
    from pytest_ablation.metrics.weights import weight_file

    for name in BUILTINS:
        spec = get_metric(name)
        assert spec.weights == OWN_WEIGHTS.get(name, ()), name
        for file in spec.weights:
            assert weight_file(file).variable.startswith("PYTEST_ABLATION_WEIGHTS_")
        # A judge-based metric uses the profile's judge, never weights of its own.
        assert not (spec.weights and "clip" in spec.needs), name


def test_needs_of_the_builtins():
    assert get_metric("clip_score").needs == {"text", "clip"}
    assert get_metric("condition_consistency").needs == {"image", "clip"}
    assert get_metric("temporal_consistency").needs == {"clip"}
    assert get_metric("temporal_flickering").needs == frozenset()


def test_unknown_metric_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown metric 'clip_scor'") as info:
        get_metric("clip_scor")
    for name in BUILTINS:
        assert name in str(info.value)


def test_duplicate_registration_is_refused():
    metrics = MetricRegistry.builtin()
    metrics.register(_spec())
    with pytest.raises(ValueError, match="'my_metric' is already registered"):
        metrics.register(_spec(definition="another"))
    assert metrics.get("my_metric").definition == "a test metric"
    metrics.register(_spec(definition="another"), replace=True)
    assert metrics.get("my_metric").definition == "another"
    with pytest.raises(ValueError, match="already registered"):
        metrics.register(_spec("clip_score"))


def test_a_registration_stays_in_its_own_registry():
    one, other = MetricRegistry.builtin(), MetricRegistry.builtin()
    one.register(_spec())
    one.register(_spec("clip_score", definition="a project's own"), replace=True)
    assert "my_metric" in one and "my_metric" not in other
    assert "my_metric" not in metric_names()
    assert other.get("clip_score").definition == get_metric("clip_score").definition
    assert get_metric("clip_score").definition != "a project's own"
    assert len(one) == len(other) + 1 == len(BUILTIN_MODULES) + 1


def test_each_builtin_metric_is_the_module_of_its_name():
    dimensions = Path(registry.__file__).with_name("dimensions")
    modules = {path.stem for path in dimensions.glob("*.py")} - {"__init__"}
    assert set(BUILTIN_MODULES) == modules == set(metric_names())
    for name in BUILTIN_MODULES:
        module = __import__(f"pytest_ablation.metrics.dimensions.{name}", fromlist=["SPEC"])
        assert module.SPEC is get_metric(name)
        assert module.SPEC.evaluate is module.evaluate


def test_a_metric_checks_the_options_a_profile_gives_it():
    metrics = MetricRegistry.builtin()
    tables = {"motion_smoothness": {"interpolator": "linear-blend"}}
    assert metrics.check_options(tables) == tables
    with pytest.raises(ValueError, match="metrics.motion_smoothness.interpolator: 'amt' is not "):
        metrics.check_options({"motion_smoothness": {"interpolator": "amt"}})
    with pytest.raises(
        ValueError, match="metrics.motion_smothness: no options for this metric; did you mean 'motion_smoothness'"
    ):
        metrics.check_options({"motion_smothness": {"interpolator": "linear-blend"}})
    with pytest.raises(
        ValueError, match="metrics.motion_smoothness.interpolater: unknown option; did you mean 'interpolator'"
    ):
        metrics.check_options({"motion_smoothness": {"interpolater": "linear-blend"}})
    with pytest.raises(ValueError, match="metrics.clip_score: no options for this metric"):
        metrics.check_options({"clip_score": {"size": 3}})


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"direction": "up"}, "direction must be one of"),
        ({"tolerance": -0.1}, "tolerance must be a finite number"),
        ({"tolerance": float("nan")}, "tolerance must be a finite number"),
        ({"needs": frozenset({"audio"})}, "unknown \\['audio'\\]"),
        ({"name": ""}, "non-empty"),
        ({"evaluate": None}, "callable"),
        ({"options": {"size": 3}}, "options must map option names to checking functions"),
    ],
)
def test_malformed_spec_is_refused(overrides, reason):
    with pytest.raises(ValueError, match=reason):
        _spec(**overrides)


def test_a_custom_metric_runs_through_the_registry():
    import torch

    from pytest_ablation.metrics import MetricInput

    def brightness(inp):
        per_frame = inp.video.mean(dim=(1, 2, 3))
        return Score(per_frame.mean().item(), tuple(per_frame.tolist()))

    metrics = MetricRegistry.builtin()
    metrics.register(_spec("brightness", evaluate=brightness))
    score = metrics.get("brightness").evaluate(MetricInput(torch.full((3, 3, 8, 8), 0.25)))
    assert score.value == pytest.approx(0.25)
    assert score.per_frame == pytest.approx((0.25,) * 3)


def test_builtin_evaluate_matches_the_public_function(tiny_clip, videos):
    from pytest_ablation.metrics import MetricInput, clip_score

    video = videos.noise(3)
    score = get_metric("clip_score").evaluate(MetricInput(video, text="a cat", clip=tiny_clip))
    assert isinstance(score, Score)
    assert score.value == clip_score(video, "a cat", tiny_clip)
    assert len(score.per_frame) == 3
    assert score.details["per"] == "frame"


def _imports_after(code: str) -> set[str]:
    probe = f"import sys; {code}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize(
    "code",
    [
        "import pytest_ablation.metrics.registry as r; r.get_metric('clip_score')",
        "import pytest_ablation.metrics as m; m.get_metric; m.Score",
        # Every built-in spec, as the plugin reads them at configure time.
        "import pytest_ablation.metrics.registry as r; r.MetricRegistry.builtin()",
    ],
)
def test_registry_and_package_import_without_heavy_libraries(code):
    loaded = _imports_after(code)
    assert not loaded & {"torch", "open_clip", "cv2", "numpy"}
