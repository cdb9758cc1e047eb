"""The toy world's parser metrics in a study: registered by the toy world's own pytest
plugin, named in a marker, scored and claimed like any built-in metric."""

import json
import textwrap
from report_files import report_of

PROFILE = """
[profile]
name = "toy-controls"
description = "32x32 clips of 8 frames, the size the control videos are drawn at"

[settings]
prompts = ["a red circle", "a blue square", "a green cross", "a white star", "a grey ring", "a pink dot"]
seeds = 1
frames = 8
steps = 1
height = 32
width = 32
guidance_scale = 1.0
fps = 8

[models.toy]
kind = "callable"
source = "toy_world:load_toy"
scale = 1.0
"""

STUDY = '''
import pytest

from pytest_ablation.toyworld.controls import control_video


class Controls:
    """The control video the case names, the scene drawn from the prompt's index."""

    def cache_identity(self):
        return {"toy": "controls"}

    def generate(self, request):
        seed = PROMPTS.index(request.prompt)
        return control_video(request.config["kind"], frames=request.frames,
                             size=request.height, seed=seed)[0]


PROMPTS = ["a red circle", "a blue square", "a green cross", "a white star", "a grey ring",
           "a pink dot"]


@pytest.mark.ablation("controls", reference="kind=smooth",
                      metrics=["trajectory_jerk", "identity_constancy", "warping_error"])
@pytest.mark.parametrize("kind", ["smooth", "teleport", "identity_swap"], ids=lambda k: f"kind={k}")
def test_controls(kind, ablation):
    result = ablation.run(Controls(), kind=kind)
    if kind == "teleport":  # a jump of 8 px in a 32 px frame: 4 * 0.25 / 5 = 0.2 of jerk
        ablation.expect(result, "trajectory_jerk").above_reference(margin=0.1)
    if kind == "identity_swap":  # 4 of 7 frames after the first change shape
        ablation.expect(result, "identity_constancy").below_reference(margin=0.5)
'''


def test_a_study_names_the_parser_metrics_and_their_claims_hold(toy):
    (toy.path / "test_flicker.py").unlink()
    (toy.path / "toy.toml").write_text(textwrap.dedent(PROFILE))
    toy.makepyfile(test_controls=STUDY)
    result = toy.runpytest("test_controls.py")
    result.assert_outcomes(passed=3)
    report = report_of(toy)
    text = json.dumps(report)
    for name in ("trajectory_jerk", "identity_constancy", "warping_error"):
        assert name in text


def test_a_misspelt_parser_metric_is_refused_with_the_known_names(toy):
    (toy.path / "test_flicker.py").unlink()
    (toy.path / "toy.toml").write_text(textwrap.dedent(PROFILE))
    toy.makepyfile(test_controls=STUDY.replace('"trajectory_jerk", ', '"trajectory_jerks", '))
    result = toy.runpytest("test_controls.py")
    assert result.ret != 0
    # The known names listed include the toy world's, registered by its plugin.
    result.stderr.fnmatch_lines(
        [
            "*unknown metric(s) 'trajectory_jerks'; did you mean 'trajectory_jerk'? known "
            "metrics:*drift_vs_gap*trajectory_jerk*"
        ]
    )
