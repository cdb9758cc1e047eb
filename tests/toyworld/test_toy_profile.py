"""The `toy` profile: the shipped weights, loaded through the kinds real checkpoints use."""

import pytest
import torch

from pytest_ablation.metrics import ClipModel, clip_score
from pytest_ablation.models import load_model
from pytest_ablation.profiles import load_profile
from pytest_ablation.toyworld import WEIGHTS_DIR
from pytest_ablation.toyworld.data import condition_image, sample_images


def test_toy_profile_points_at_the_shipped_weights_with_the_real_checkpoint_kinds():
    profile = load_profile("toy")
    kinds = {role: spec.kind for role, spec in profile.models.items()}
    assert kinds == {"sd": "stable-diffusion", "svd": "stable-video-diffusion", "clip": "open-clip"}
    for spec in profile.models.values():
        assert str(WEIGHTS_DIR.resolve()) in spec.source
    assert (profile.settings.height, profile.settings.width) == (32, 32)


def test_the_toy_judge_scores_its_own_caption_above_the_others():
    judge = load_model(load_profile("toy").model("clip"), "cpu")
    assert isinstance(judge, ClipModel)
    images, captions, _ = sample_images(4, seed=123)
    for image, caption in zip(images, captions):
        video = image.unsqueeze(0)
        others = [c for c in ("a red circle", "a blue square", "a green cross") if c != caption]
        assert clip_score(video, caption, judge) > max(clip_score(video, o, judge) for o in others)


def test_condition_images_are_seeded_toy_scenes():
    first = condition_image(32, 32, generator=torch.Generator().manual_seed(5))
    again = condition_image(32, 32, generator=torch.Generator().manual_seed(5))
    other = condition_image(32, 32, generator=torch.Generator().manual_seed(6))
    assert first.shape == (3, 32, 32) and torch.equal(first, again) and not torch.equal(first, other)
    assert 0.0 <= float(first.min()) and float(first.max()) <= 1.0


def test_the_toy_world_refuses_only_prompts_it_cannot_draw():
    from pytest_ablation.toyworld.data import unrenderable

    assert unrenderable(load_profile("toy").settings.prompts) == []
    assert unrenderable(["A Red  circle", "a blue square moving left"]) == []
    [problem] = unrenderable(["a red circle", "a horse galloping"])
    assert problem.startswith("'a horse galloping' is not a scene it can draw")
    assert "colour one of red, green, blue, yellow, purple" in problem


@pytest.mark.slow
def test_a_toy_run_with_a_prompt_it_cannot_draw_stops_before_any_model_loads(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    profile = tmp_path / "horses.toml"
    profile.write_text(
        '[profile]\nname = "horses"\nextends = "toy"\n\n[settings]\n'
        'prompts = ["a red circle", "a horse galloping", "a blue square", "a green cross",'
        ' "a purple circle", "a red square", "a blue triangle", "a yellow cross"]\n'
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "ablations/test_zs2_tma.py",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--ablation-profile={profile}",
            f"--ablation-report-dir={tmp_path / 'reports'}",
            f"--ablation-cache-dir={tmp_path / 'cache'}",
            f"--rootdir={repo}",
        ],
        capture_output=True,
        text=True,
        cwd=repo,
        timeout=300,
    )
    assert done.returncode == 4, done.stdout + done.stderr
    assert "profile 'horses' cannot render its prompts:" in done.stderr
    assert "'a horse galloping' is not a scene it can draw" in done.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "reports").exists()
