"""The studies' generator: variant configurations, tuned weights cached by configuration."""

from __future__ import annotations

import copy

import pytest
import torch

from pytest_ablation.run.cache import ResultCache
from pytest_ablation.run.generation import GenerationRequest
from pytest_ablation.methods.exvideo import ExVideoVariants, TuningRecipe, exvideo_settings
from pytest_ablation.methods.exvideo import tuning as tuning_module
from pytest_ablation.methods.exvideo import variants as variants_module

RECIPE = TuningRecipe(steps=2, clips=2, frames=4, height=16, width=16, max_frames=30, lr=1e-3)


def request(seed=0, frames=27, seed_index=None, **config):
    return GenerationRequest(
        prompt="p",
        seed=seed,
        generator=torch.Generator().manual_seed(seed),
        frames=frames,
        steps=1,
        height=16,
        width=16,
        guidance_scale=3.0,
        fps=7,
        device="cpu",
        config=config,
        seed_index=seed_index,
    )


@pytest.fixture
def lab(tiny_svd, tmp_path):
    def make(recipe=RECIPE, identity=None):
        return ExVideoVariants(
            tiny_svd, recipe=recipe, model_identity=identity or {"svd": "tiny"}, store=ResultCache(tmp_path / "cache")
        )

    return make


def test_variants_sample_past_25_frames_with_their_configuration(lab) -> None:
    ex = lab()
    out = ex.generate(request(position="cyclic"))
    assert out.video.shape == (27, 3, 16, 16)
    assert len(out.info["tuning"]["losses"]) == 2
    settings = exvideo_settings(ex.unet_for(variants_module.parse_config({"position": "cyclic"})))
    assert settings.to_dict() == {
        "max_frames": 30,
        "position": "cyclic",
        "identity_conv": True,
        "trained_frames": 8,
    }  # the tiny SVD's config.num_frames


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
    for other in (
        lab().tuning_key("cyclic", True),
        lab().tuning_key("static", False),
        lab(identity={"svd": "other"}).tuning_key("static", True),
        lab(recipe=TuningRecipe(**{**RECIPE.to_dict(), "steps": 3})).tuning_key("static", True),
    ):
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
    with pytest.raises(ValueError, match="conv_lr: got 0; expected a number > 0"):
        TuningRecipe(**{**RECIPE.to_dict(), "conv_lr": 0})
    with pytest.raises(ValueError, match="table_lr: got 'fast'"):
        TuningRecipe(**{**RECIPE.to_dict(), "table_lr": "fast"})


def test_part_rates_are_part_of_the_tuning_key_only_when_set(lab) -> None:
    slow_conv = TuningRecipe(**{**RECIPE.to_dict(), "conv_lr": 1e-5})
    assert "conv_lr" not in RECIPE.to_dict() and "table_lr" not in RECIPE.to_dict()
    assert slow_conv.part_lr == {"conv": 1e-5}
    assert slow_conv.part_budget("conv") == pytest.approx(2e-5)
    assert slow_conv.part_budget("table") == pytest.approx(RECIPE.budget)
    assert lab(recipe=slow_conv).tuning_key("trainable", True) != lab().tuning_key("trainable", True)
    with pytest.raises(ValueError, match="part: got 'mlp'"):
        slow_conv.part_budget("mlp")


# -- tuning runs, the starting model, the untuned control, the budgets ----------------------
RUNS = TuningRecipe(**{**RECIPE.to_dict(), "tuning_runs": 2})


def test_each_seed_index_samples_its_own_tuning_run(lab) -> None:
    ex = lab(recipe=RUNS)
    outs = ex.generate_batch([request(seed=s, seed_index=i) for s, i in ((3, 0), (4, 1), (5, 2))])
    runs = [o.info["tuning"]["run"] for o in outs]
    assert runs == [0, 1, 0]  # seed index k samples run k mod tuning_runs
    assert [o.info["tuning"]["seed"] for o in outs] == [RUNS.seed, RUNS.seed + 1, RUNS.seed]
    first, second = ex.tuned_weights("trainable", True, 0), ex.tuned_weights("trainable", True, 1)
    assert any(not torch.equal(first[k], second[k]) for k in first)  # independent runs
    # Alone, seed index 1 gets the video it got in the mixed batch.
    alone = ex.generate(request(seed=4, seed_index=1))
    torch.testing.assert_close(alone.video, outs[1].video, rtol=0, atol=1e-5)


def test_a_run_keeps_its_weights_when_runs_are_added(lab) -> None:
    one, two = lab(), lab(recipe=RUNS)
    assert one.tuning_key("static", True, 0) == two.tuning_key("static", True, 0)
    assert two.tuning_key("static", True, 0) != two.tuning_key("static", True, 1)
    with pytest.raises(ValueError, match="run: got 2; the recipe has tuning runs 0..1"):
        two.tuning_key("static", True, 2)


def test_tuned_from_svd_starts_from_the_base_model(tiny_svd, tmp_path) -> None:
    from pytest_ablation.models.tiny import build_tiny_stable_video_diffusion

    other = build_tiny_stable_video_diffusion(seed=1)  # stands in for plain SVD under ExSVD
    ex = ExVideoVariants(
        tiny_svd,
        recipe=RECIPE,
        model_identity={"svd": "exsvd"},
        store=ResultCache(tmp_path / "cache"),
        base=other,
        base_identity={"svd": "plain"},
    )
    assert ex.tuning_key("trainable", True, tuned_from="svd") != ex.tuning_key("trainable", True)
    untuned = ex.unet_for(variants_module.parse_config({"tuned": False, "tuned_from": "svd"}))
    frozen_names = [n for n, _ in other.unet.named_parameters()]
    params = dict(untuned.named_parameters())
    base_params = dict(other.unet.named_parameters())
    assert all(torch.equal(params[n], base_params[n]) for n in frozen_names)
    # Without a base the two starts are one model and share their tuned weights.
    same = ExVideoVariants(tiny_svd, recipe=RECIPE, model_identity={"svd": "tiny"})
    assert same.tuning_key("trainable", True, tuned_from="svd") == same.tuning_key("trainable", True)
    with pytest.raises(ValueError, match="tuned_from: got 'exsvd'"):
        variants_module.parse_config({"tuned_from": "exsvd"})


def test_the_untuned_control_is_the_extension_as_initialised(lab, tiny_svd) -> None:
    from pytest_ablation.methods.exvideo import exvideo_state_dict, extend_unet

    ex = lab(recipe=RUNS)
    out = ex.generate(request(seed_index=1, tuned=False))
    assert "tuning" not in out.info
    unet = ex.unet_for(variants_module.parse_config({"tuned": False}))
    fresh = exvideo_state_dict(extend_unet(copy.deepcopy(tiny_svd.unet), RECIPE.max_frames))
    got = exvideo_state_dict(unet)
    assert got.keys() == fresh.keys() and all(torch.equal(got[k], fresh[k]) for k in fresh)


def test_every_profile_budget_lets_the_new_parts_move() -> None:
    # Adam moves a parameter by about lr per step: steps x lr bounds how far the table and
    # the convolution can leave their initialisation; 0.1 is the floor the studies need.
    from pytest_ablation.methods.exvideo import STANDARD_RECIPE, exvideo_on_profile
    from pytest_ablation.profiles import load_profile

    recipes = {"standard": STANDARD_RECIPE}
    recipes.update((name, exvideo_on_profile(load_profile(name)).recipe) for name in ("tiny", "toy"))
    for name, recipe in recipes.items():
        assert recipe.steps * recipe.lr >= 0.1 - 1e-12, name
        assert recipe.budget == recipe.steps * recipe.lr
        assert recipe.tuning_runs == 3, name  # the studies' unit: one seed index per run


def test_long_videos_go_well_past_the_trained_length(tiny_svd) -> None:
    # The tiny and toy SVDs were trained on 8 frames (their config's num_frames).
    import json
    from pathlib import Path

    from pytest_ablation.methods.exvideo import exvideo_on_profile, trained_frames
    from pytest_ablation.profiles import load_profile

    toy_config = Path(__file__).parents[2] / "pytest_ablation/toyworld/weights/i2v/unet/config.json"
    trained = {"tiny": trained_frames(tiny_svd.unet), "toy": json.loads(toy_config.read_text())["num_frames"]}
    for name, length in trained.items():
        frames = exvideo_on_profile(load_profile(name)).long_video["frames"]
        assert frames >= 3 * length, (name, frames, length)


@pytest.mark.slow
def test_how_far_tuning_moved_the_new_parts_is_in_the_details(lab, tiny_svd, tmp_path) -> None:
    from pytest_ablation.methods.exvideo import exvideo_state_dict, extend_unet

    ex = lab()
    out = ex.generate(request(position="trainable"))
    moved = out.info["details"]
    tuned = ex.tuned_weights("trainable", True)
    initial = exvideo_state_dict(extend_unet(copy.deepcopy(tiny_svd.unet), RECIPE.max_frames))
    for part, suffix in (("table", "time_proj.embeddings"), ("conv", "position_conv.weight")):
        names = sorted(n for n in initial if n.endswith(suffix))
        # The conv starts as the identity: norm sqrt(channels).
        if part == "conv":
            assert initial[names[0]].norm() == pytest.approx(initial[names[0]].shape[0] ** 0.5)
        ratios = [float((tuned[n] - initial[n]).norm() / initial[n].norm()) for n in names]
        assert moved[f"tuned_{part}_change"] == pytest.approx(sum(ratios) / len(ratios), abs=1e-6)
        assert moved[f"tuned_{part}_change"] > 0
    # Read back from the store (a new process), the figures are the same.
    again = ExVideoVariants(
        tiny_svd, recipe=RECIPE, model_identity={"svd": "tiny"}, store=ResultCache(tmp_path / "cache")
    )
    assert again.generate(request(position="trainable")).info["details"] == moved
    # Parts a variant was tuned without are not reported; an untuned variant reports none.
    static = ex.generate(request(position="static")).info["details"]
    assert set(static) == {"tuned_conv_change"}
    assert "details" not in ex.generate(request(tuned=False)).info
    # No learning rate, no movement.
    still = lab(recipe=TuningRecipe(**{**RECIPE.to_dict(), "lr": 1e-30}))
    assert still.generate(request(position="trainable")).info["details"]["tuned_conv_change"] < 1e-20
    # A rate for the convolution alone: it stays put while the table still moves at lr (its
    # gradients change with a still convolution, not its rate, hence the loose bound).
    conv_still = lab(recipe=TuningRecipe(**{**RECIPE.to_dict(), "conv_lr": 1e-30}))
    apart = conv_still.generate(request(position="trainable")).info["details"]
    assert apart["tuned_conv_change"] < 1e-20
    assert apart["tuned_table_change"] == pytest.approx(moved["tuned_table_change"], rel=0.25)


def test_a_profile_sets_the_part_rates(tmp_path) -> None:
    from pytest_ablation.methods.exvideo.profile import exvideo_on_profile
    from pytest_ablation.profiles import load_profile

    def profile(conv_lr: str):
        path = tmp_path / f"slow-conv-{len(list(tmp_path.iterdir()))}.toml"
        path.write_text(
            '[profile]\nname = "toy-slow-conv"\nextends = "toy"\n\n[methods.exvideo]\n'
            "recipe = { steps = 40, clips = 8, frames = 32, height = 32, width = 32, "
            f"max_frames = 32, lr = 2.5e-3, conv_lr = {conv_lr}, tuning_runs = 3 }}\n"
        )
        return load_profile(path)

    recipe = exvideo_on_profile(profile("2.5e-4")).recipe
    assert recipe.part_lr == {"conv": 2.5e-4} and recipe.lr == 2.5e-3
    with pytest.raises(ValueError, match=r"methods\.exvideo\.recipe: conv_lr: got -1"):
        exvideo_on_profile(profile("-1"))
