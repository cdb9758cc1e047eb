"""ZS2Sampler on the tiny Stable Diffusion: shapes, determinism, batching, where TMA runs."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from numerics import assert_other_video, assert_same_video

from pytest_ablation.run.generation import GenerationRequest, bind_generator, check_output
from pytest_ablation.run.keys import canonical
from pytest_ablation.methods.zs2 import NOISE_METHODS, TemporalMomentumAttnProcessor, ZS2Sampler

SMALL = dict(frames=3, steps=2, height=64, width=64, progress=False)


@pytest.fixture(scope="module")
def sampler(tiny_sd):
    return ZS2Sampler(tiny_sd, **SMALL)


def request_for(
    prompt="a red ball",
    seed=0,
    frames=3,
    steps=2,
    height=64,
    width=64,
    guidance_scale=7.5,
    progress=False,
    **config,
):
    return GenerationRequest(
        prompt=prompt,
        seed=seed,
        generator=torch.Generator().manual_seed(seed),
        frames=frames,
        steps=steps,
        height=height,
        width=width,
        guidance_scale=guidance_scale,
        fps=8,
        device="cpu",
        config=config,
        progress=progress,
    )


@pytest.mark.parametrize("frames, height, width", [(1, 64, 64), (3, 64, 64), (2, 48, 80)])
def test_shape_range_and_dtype(sampler, frames, height, width):
    video = sampler("a red ball", frames=frames, height=height, width=width)
    assert video.shape == (frames, 3, height, width)
    assert video.dtype == torch.float32 and video.device.type == "cpu"
    assert 0.0 <= video.min() and video.max() <= 1.0


@pytest.mark.parametrize("noise", NOISE_METHODS)
def test_every_noise_method_samples(sampler, noise):
    video = sampler("a red ball", noise=noise)
    assert video.shape == (3, 3, 64, 64) and torch.isfinite(video).all()


def test_the_same_seed_gives_the_same_video(sampler):
    a = sampler.generate(request_for(seed=5, momentum=0.6)).video
    b = sampler.generate(request_for(seed=5, momentum=0.6)).video
    c = sampler.generate(request_for(seed=6, momentum=0.6)).video
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(sampler("a red ball", seed=3), sampler("a red ball", seed=3))


def test_configuration_changes_the_video(sampler):
    base = sampler.generate(request_for(momentum=0.0)).video
    assert not torch.equal(base, sampler.generate(request_for(momentum=1.0)).video)
    assert not torch.equal(base, sampler.generate(request_for(momentum=0.0, noise="independent")).video)


def test_generate_follows_the_plugin_protocol(sampler):
    bound = bind_generator(sampler, lambda: {})
    output = check_output(
        bound.call(request_for(frames=2, momentum=0.8, noise="analytic", lam=0.2)),
        generator=bound.name,
    )
    assert output.video.shape == (2, 3, 64, 64)
    assert bound.identity["method"] == "zs2"


def count_processor_calls(monkeypatch):
    calls = Counter()
    seen = {}
    original = TemporalMomentumAttnProcessor.__call__

    def counting(self, attn, hidden_states, encoder_hidden_states=None, *args, **kwargs):
        calls[id(attn)] += 1
        seen[id(attn)] = (
            self.momentum,
            self.num_frames,
            hidden_states.shape[0],
            encoder_hidden_states is None,
        )
        return original(self, attn, hidden_states, encoder_hidden_states, *args, **kwargs)

    monkeypatch.setattr(TemporalMomentumAttnProcessor, "__call__", counting)
    return calls, seen


def test_momentum_reaches_every_self_attention_layer_at_every_step(tiny_sd, sampler, monkeypatch):
    calls, seen = count_processor_calls(monkeypatch)
    sampler.generate(request_for(frames=3, steps=4, momentum=0.7))
    modules = dict(tiny_sd.unet.named_modules())
    self_attention = {id(m) for name, m in modules.items() if name.endswith("attn1")}
    cross_attention = {id(m) for name, m in modules.items() if name.endswith("attn2")}
    assert len(self_attention) == 4  # the tiny UNet: down, mid and two up transformer blocks
    assert set(calls) == self_attention and not set(calls) & cross_attention
    assert set(calls.values()) == {4}
    # Both guidance branches of all 3 frames in one batch, as self-attention.
    assert set(seen.values()) == {(0.7, 3, 6, True)}


def test_one_batched_unet_call_per_step(tiny_sd, sampler, monkeypatch):
    batches = []
    unet = tiny_sd.unet
    original = type(unet).forward

    def recording(self, sample, *args, **kwargs):
        batches.append(sample.shape[0])
        return original(self, sample, *args, **kwargs)

    monkeypatch.setattr(type(unet), "forward", recording)
    sampler.generate(request_for(frames=3, steps=5))
    assert batches == [6] * 5
    batches.clear()
    sampler.generate(request_for(frames=3, steps=2, guidance_scale=1.0))  # no guidance
    assert batches == [3] * 2


def test_the_unets_processors_are_restored(tiny_sd, sampler, monkeypatch):
    before = dict(tiny_sd.unet.attn_processors)
    sampler("a red ball")
    assert tiny_sd.unet.attn_processors == before

    def fail(self, *args, **kwargs):
        assert isinstance(self.attn_processors[SELF_ATTENTION], TemporalMomentumAttnProcessor)
        raise RuntimeError("interrupted mid-sampling")

    monkeypatch.setattr(type(tiny_sd.unet), "forward", fail)
    with pytest.raises(RuntimeError, match="interrupted mid-sampling"):
        sampler("a red ball")
    assert tiny_sd.unet.attn_processors == before


SELF_ATTENTION = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor"


def test_chunked_decoding_matches_decoding_at_once(sampler):
    whole = sampler("a red ball", frames=3, seed=1)
    chunked = sampler("a red ball", frames=3, seed=1, decode_chunk_size=2)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)


def test_progress_bar_only_when_asked(sampler, capsys):
    sampler.generate(request_for(steps=2, progress=False))
    assert "ZS²" not in capsys.readouterr().err
    sampler.generate(request_for(steps=2, progress=True))
    assert "ZS² denoising" in capsys.readouterr().err


def test_components_load_on_first_use_only(tiny_sd):
    loads = []

    def loader():
        loads.append(1)
        return tiny_sd

    lazy = ZS2Sampler(loader, model_identity={"kind": "tiny"}, **SMALL)
    identity = lazy.cache_identity()
    assert loads == []
    lazy("a red ball")
    lazy("a red ball")
    assert loads == [1]
    assert identity["models"] == {"sd": {"kind": "tiny"}}


def test_cache_identity_names_code_models_and_defaults(tiny_sd):
    a = ZS2Sampler(tiny_sd, model_identity={"kind": "x"}).cache_identity()
    b = ZS2Sampler(tiny_sd, model_identity={"kind": "x"}, lam=0.2).cache_identity()
    json.dumps(canonical(a))
    assert a["version"] and len(a["source"]) == 16
    assert a != b  # a default that changes the videos changes the identity


# -- bad input, refused before any model work ---------------------------------------------------
def _never_loaded():
    raise AssertionError("the model was loaded for a request that should have been refused")


@pytest.mark.parametrize(
    "option, message",
    [
        ({"momentum": 1.5}, r"momentum must be in \[0, 1\]"),
        ({"momentum": float("nan")}, r"momentum must be in \[0, 1\]"),
        ({"momentum": -0.1}, r"momentum must be in \[0, 1\]"),
        ({"frames": 0}, "frames must be >= 1"),
        ({"lam": -0.5}, "lam must be a finite number >= 0"),
        (
            {"noise": "pink"},
            "noise must be one of 'two_stage', 'random', 'analytic', 'independent'",
        ),
        ({"steps": 0}, "steps must be an integer >= 1"),
        ({"alpha": -1.0}, "alpha must be a finite number >= 0"),
        ({"guidance_scale": float("inf")}, "guidance_scale must be a finite number"),
        ({"mu": 0.5}, "unknown option"),
    ],
)
def test_bad_options_are_refused_before_loading(option, message):
    lazy = ZS2Sampler(_never_loaded, **SMALL)
    with pytest.raises((ValueError, TypeError), match=message):
        lazy("a red ball", **option)


def test_bad_constructor_arguments_are_refused():
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\]"):
        ZS2Sampler(_never_loaded, momentum=2.0)
    with pytest.raises(ValueError, match="noise must be one of"):
        ZS2Sampler(_never_loaded, noise="gaussian")


def test_unknown_study_configuration_is_refused(sampler):
    with pytest.raises(ValueError, match="unknown configuration 'mu'; allowed: momentum, noise, lam"):
        sampler.generate(request_for(mu=0.5))


def test_a_size_the_vae_cannot_halve_is_refused(sampler):
    with pytest.raises(ValueError, match="multiples of 8"):
        sampler("a red ball", height=60)


def test_the_sampler_is_stable_diffusions_pipeline_with_tma_and_dependency_noise(tiny_sd):
    # ZS² is Stable Diffusion's own sampling loop over the frames as a batch, plus the two
    # parts: diffusers' pipeline with TMA installed and dependency noise as its latents must
    # give the same video.
    from diffusers import StableDiffusionPipeline

    from pytest_ablation.methods.zs2 import dependency_noise, tma_installed

    pipe = StableDiffusionPipeline(
        **dict(tiny_sd.parts()),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    frames = 3
    noise = dependency_noise((1, frames, 4, 8, 8), 0.1, "two_stage", torch.Generator().manual_seed(7))
    with tma_installed(tiny_sd.unet, 0.8, frames):
        expected = pipe(
            "a red ball",
            num_images_per_prompt=frames,
            latents=noise[0],
            height=64,
            width=64,
            num_inference_steps=2,
            guidance_scale=7.5,
            output_type="pt",
        ).images
    got = ZS2Sampler(pipe, **SMALL)("a red ball", seed=7, momentum=0.8, lam=0.1)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_a_batched_video_does_not_depend_on_its_batch_mates(sampler):
    # The same batch shape with other company: bit for bit the same video (on the CPU).
    first = sampler.generate_batch(
        [request_for("a red ball", seed=1), request_for("a blue lake", seed=2), request_for("a cat", seed=3)]
    )
    second = sampler.generate_batch(
        [request_for("a red ball", seed=1), request_for("a dog", seed=7), request_for("a blue lake", seed=9)]
    )
    first, second = [v.video for v in first], [v.video for v in second]
    assert torch.equal(first[0], second[0])
    assert not torch.equal(first[1], second[2])  # another seed: another video
    # Alone, the kernels see another shape and may sum in another order: float rounding only.
    alone = sampler.generate(request_for("a red ball", seed=1)).video
    assert_same_video(first[0], alone, "batched vs alone")
    assert_other_video(sampler.generate(request_for("a red ball", seed=2)).video, alone)


def test_a_batch_shares_its_configuration(sampler):
    with pytest.raises(ValueError, match="the requests differ in config"):
        sampler.generate_batch([request_for(momentum=0.5), request_for(momentum=1.0)])
    with pytest.raises(ValueError, match="the requests differ in frames"):
        sampler.generate_batch([request_for(frames=2), request_for(frames=3)])


def test_each_video_reports_the_noise_it_achieved(sampler):
    from pytest_ablation.methods.zs2 import noise_statistics

    for noise in ("two_stage", "independent", "progressive"):
        out = sampler.generate(request_for(seed=4, noise=noise, lam=0.1))
        shape = (1, 3, 4, 8, 8)  # the tiny SD's latents at 64x64
        drawn = ZS2Sampler.initial_noise(
            shape, sampler._checked({**sampler.defaults, "noise": noise, "lam": 0.1}), torch.Generator().manual_seed(4)
        )
        expected = noise_statistics(drawn)
        details = out.info["details"]
        assert details["noise_std"] == pytest.approx(expected["std"], abs=1e-6)
        assert details["noise_correlation"] == pytest.approx(expected["correlation"], abs=1e-6)
        assert ("noise_lam" in details) == (noise == "two_stage")


def test_the_correlation_option_sets_the_dependency(sampler):
    from pytest_ablation.methods.zs2 import noise_statistics

    shape = (1, 3, 4, 8, 8)
    options = sampler._checked({**sampler.defaults, "noise": "progressive", "correlation": 0.7})
    drawn = ZS2Sampler.initial_noise(shape, options, torch.Generator().manual_seed(0))
    # Progressive noise at alpha matched to 0.7 is an AR(1) of that correlation: the draw's
    # sample correlation scatters around it.
    assert noise_statistics(drawn)["correlation"] == pytest.approx(0.7, abs=0.2)
    searched = sampler._checked({**sampler.defaults, "noise": "two_stage", "correlation": 0.7})
    lam = ZS2Sampler.noise_lambda(shape, searched)
    assert lam != sampler.defaults["lam"] and lam > 0
    assert ZS2Sampler.noise_lambda(shape, sampler._checked({**sampler.defaults})) == sampler.defaults["lam"]
    with pytest.raises(ValueError, match="independent noise has no dependency"):
        sampler.generate(request_for(noise="independent", correlation=0.5))
    with pytest.raises(ValueError, match="correlation must be a number in"):
        sampler.generate(request_for(correlation=1.5))
