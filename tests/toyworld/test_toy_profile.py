"""The `toy` profile: the shipped weights, loaded through the kinds real checkpoints use."""

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
