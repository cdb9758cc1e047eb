"""The studies' generator: variant configurations, tuned weights cached by configuration."""

from __future__ import annotations

import pytest
import torch

from pytest_ablation.cache import ResultCache
from pytest_ablation.generation import GenerationRequest
from pytest_ablation.methods.exvideo import ExVideoVariants, TuningRecipe, exvideo_settings
from pytest_ablation.methods.exvideo import tuning as tuning_module
from pytest_ablation.methods.exvideo import variants as variants_module

RECIPE = TuningRecipe(steps=2, clips=2, frames=4, height=16, width=16, max_frames=30, lr=1e-3)


def request(seed=0, frames=27, **config):
    return GenerationRequest(
        prompt="p", seed=seed, generator=torch.Generator().manual_seed(seed), frames=frames,
        steps=1, height=16, width=16, guidance_scale=3.0, fps=7, device="cpu", config=config,
    )


@pytest.fixture
def lab(tiny_svd, tmp_path):
    def make(recipe=RECIPE, identity=None):
        return ExVideoVariants(tiny_svd, recipe=recipe, model_identity=identity or {"svd": "tiny"},
                               store=ResultCache(tmp_path / "cache"))
    return make


def test_variants_sample_past_25_frames_with_their_configuration(lab) -> None:
    ex = lab()
    out = ex.generate(request(position="cyclic"))
    assert out.video.shape == (27, 3, 16, 16)
    assert len(out.info["tuning"]["losses"]) == 2
    settings = exvideo_settings(ex.unet_for(variants_module.parse_config({"position": "cyclic"})))
    assert settings.to_dict() == {"max_frames": 30, "position": "cyclic", "identity_conv": True}


def test_inference_time_removal_uses_the_weights_tuned_with_the_conv(lab) -> None:
    ex = lab()
    removed = ex.unet_for(variants_module.parse_config({"identity_conv": False, "tuned_with": {"identity_conv": True}}))
    tuned = ex.tuned_weights("trainable", True)
    params = dict(removed.named_parameters())
    shared = [n for n in tuned if "position_conv" not in n]
    assert shared and all(torch.equal(params[n], tuned[n]) for n in shared)
    assert not any("position_conv" in n for n in params)
    without = ex.tuned_weights("trainable", False)  # the training-time ablation: tuned without it
    assert set(without) == set(shared)
    assert any(not torch.equal(without[n], tuned[n]) for n in shared)


def test_tuned_weights_are_cached_by_configuration(lab, monkeypatch, tmp_path) -> None:
    first = lab().tuned_weights("static", True)
    files = list((tmp_path / "cache").rglob("*.safetensors"))
    assert len(files) == 1

    def no_tuning(*args, **kwargs):
        raise AssertionError("tuned again")

    monkeypatch.setattr(tuning_module, "post_tune", no_tuning)  # where tuning looks it up
    again = lab().tuned_weights("static", True)  # a new process would see the same file
    assert again.keys() == first.keys() and all(torch.equal(again[k], first[k]) for k in first)
    for other in (lab().tuning_key("cyclic", True), lab().tuning_key("static", False),
                  lab(identity={"svd": "other"}).tuning_key("static", True),
                  lab(recipe=TuningRecipe(**{**RECIPE.to_dict(), "steps": 3})).tuning_key("static", True)):
        assert other != lab().tuning_key("static", True)


def test_a_corrupted_weights_file_is_recomputed(lab, tmp_path) -> None:
    first = lab().tuned_weights("interpolated", True)
    (path,) = (tmp_path / "cache").rglob("*.safetensors")
    path.write_bytes(path.read_bytes()[:-64])
    cache = ResultCache(tmp_path / "cache")
    ex = ExVideoVariants(lab().components, recipe=RECIPE, model_identity={"svd": "tiny"}, store=cache)
    again = ex.tuned_weights("interpolated", True)
    assert cache.stats.corrupted and cache.stats.misses == 1
    assert all(torch.equal(again[k], first[k]) for k in first)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"position": "sliding"}, "position: got 'sliding'"),
        ({"identity_conv": 1}, "identity_conv: got 1"),
        ({"tuned_with": {"lr": 1}}, "tuned_with"),
        ({"tuned": False, "tuned_with": {"identity_conv": True}}, "tuned=False"),
        ({"momentum": 0.9}, "unknown configuration 'momentum'"),
    ],
)
def test_bad_configuration(lab, config, message) -> None:
    with pytest.raises(ValueError, match=message):
        lab().generate(request(**config))


def test_frames_beyond_the_recipe_are_refused(lab) -> None:
    with pytest.raises(ValueError, match="frames: got 31; .*max_frames=30"):
        lab().generate(request(frames=31))


def test_recipe_checks() -> None:
    with pytest.raises(ValueError, match="frames: got 40; the recipe's max_frames is 32"):
        TuningRecipe(steps=1, clips=1, frames=40, height=16, width=16, max_frames=32)
    with pytest.raises(ValueError, match="multiples of 8"):
        TuningRecipe(steps=1, clips=1, frames=4, height=12, width=16, max_frames=32)
