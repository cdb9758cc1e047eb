"""The toy image-to-video model: SVD's conventions, what training touches, the shipped folder."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from pytest_ablation.toyworld import WEIGHTS_DIR
from pytest_ablation.toyworld.data import sample_videos
from toyworld import i2v


def _perturbed_image_vae():
    """The text-to-image autoencoder's architecture with every weight nudged off its init,
    so that no bias or norm happens to be zero and hide a mapping error."""
    from toyworld.vae import build_vae

    vae = build_vae(seed=3)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in vae.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    return vae.eval()


def _image_encoder():
    """A small random CLIP image encoder at the 224 px input ExVideo's helpers feed it."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        config = CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            projection_dim=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=224,
            patch_size=56,
        )
        encoder = CLIPVisionModelWithProjection(config)
    return encoder.eval().requires_grad_(False), CLIPImageProcessor()


def _checksum(module: torch.nn.Module) -> list[float]:
    return [float(p.double().sum()) for p in module.parameters()]


def test_temporal_vae_starts_as_the_image_autoencoder():
    spatial = _perturbed_image_vae()
    # Without a post_quant_conv bias the fold is exact everywhere (with one, only the
    # border moves, by the bias: see build_temporal_vae).
    with torch.no_grad():
        spatial.post_quant_conv.bias.zero_()
    temporal = i2v.build_temporal_vae(spatial)
    clip = sample_videos(1, i2v.FRAMES, seed=5)[0][0] * 2 - 1
    with torch.no_grad():
        image_posterior = spatial.encode(clip).latent_dist
        video_posterior = temporal.encode(clip).latent_dist
        expected = spatial.decode(image_posterior.mean).sample
        decoded = temporal.decode(image_posterior.mean, num_frames=clip.shape[0]).sample
    assert torch.allclose(image_posterior.mean, video_posterior.mean, atol=1e-5)
    assert torch.allclose(image_posterior.std, video_posterior.std, atol=1e-5)
    assert (decoded - expected).abs().max() < 1e-4 * max(1.0, float(expected.abs().max()))
    assert temporal.config.scaling_factor == spatial.config.scaling_factor


def test_loss_is_post_tunes_objective():
    """With both conditions kept, the training loss is ExVideo's post-tuning loss: the two
    share SVD's preconditioning, so post_tune continues this training."""
    from pytest_ablation.methods.exvideo.tuning import TuningData
    from pytest_ablation.methods.exvideo.tuning import denoising_loss as post_tune_loss

    unet = i2v.build_unet(seed=0)
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(2, i2v.FRAMES, 4, 8, 8, generator=generator)
    conditions = torch.randn(2, 4, 8, 8, generator=generator)
    embeddings = torch.randn(2, 1, 64, generator=generator)
    sigma = torch.tensor([0.3, 4.0])
    noise = torch.randn(latents.shape, generator=generator)
    fps, bucket, aug = 7, 127, 0.02
    batch = i2v.Batch(latents, conditions, embeddings, torch.tensor([[fps - 1, bucket, aug]] * 2))
    data = TuningData(latents=latents, embeddings=embeddings, conditions=conditions, noise_aug_strength=aug)
    with torch.no_grad():
        ours = i2v.denoising_loss(unet, batch, sigma, noise, torch.ones(2, dtype=torch.bool))
        theirs = post_tune_loss(unet, data, torch.arange(2), sigma, noise, fps=fps, motion_bucket_id=bucket)
        dropped = i2v.denoising_loss(unet, batch, sigma, noise, torch.zeros(2, dtype=torch.bool))
    assert torch.allclose(ours, theirs, rtol=1e-5)
    assert not torch.allclose(ours, dropped)  # dropping the conditions reaches the UNet


@pytest.mark.slow
def test_training_lowers_the_loss_and_trains_only_the_unet():
    encoder, processor = _image_encoder()
    vae = i2v.build_temporal_vae(_perturbed_image_vae())
    parts = i2v.Encoders(image_encoder=encoder, feature_extractor=processor, vae=vae)
    unet = i2v.build_unet(seed=0)
    before_unet = copy.deepcopy(unet.state_dict())
    frozen = (_checksum(encoder), _checksum(vae))
    # One small pool, visited by every step; no averaging, so the last step is what is kept.
    recipe = replace(i2v.RECIPE, batch_size=2, pool_clips=2, lr=2e-3, warmup=1, ema_decay=0.0, condition_dropout=0.0)

    def fixed_loss() -> float:
        generator = torch.Generator().manual_seed(123)
        pool = i2v.encode_pool(parts, 2, seed=0, noise_aug_strength=recipe.noise_aug_strength, generator=generator)
        batch = i2v.draw_batch(pool, torch.arange(2), [7, 7], generator)
        sigma = torch.tensor([0.5, 2.0])
        noise = torch.randn(batch.latents.shape, generator=generator)
        with torch.no_grad():
            return float(i2v.denoising_loss(unet, batch, sigma, noise, torch.ones(2, dtype=torch.bool)))

    start = fixed_loss()
    result = i2v.train_unet(unet, parts, steps=12, seed=0, recipe=recipe, progress=lambda _: None)
    assert len(result.losses) == 12
    assert fixed_loss() < start
    assert (_checksum(encoder), _checksum(vae)) == frozen
    changed = [n for n, p in unet.state_dict().items() if not torch.equal(p, before_unet[n])]
    assert len(changed) > 0.9 * len(before_unet)
    assert not unet.training and not any(p.requires_grad for p in unet.parameters())


def test_image_embeddings_are_exvideos_at_its_size():
    from pytest_ablation.methods.exvideo import conditioning

    encoder, processor = _image_encoder()
    assert encoder.config.image_size == conditioning.CLIP_SIZE
    images = sample_videos(3, 1, seed=2)[0][:, 0]
    with torch.no_grad():
        ours = i2v.image_embeddings(encoder, processor, images)
        theirs = conditioning.image_embeddings(encoder, processor, images)
    assert ours.shape == (3, 1, encoder.config.projection_dim)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_motion_bucket_follows_speed():
    assert i2v.motion_bucket(1.0) == 127  # SVD's default bucket: one pixel per frame
    assert i2v.motion_bucket(0.5) < i2v.motion_bucket(1.0) < i2v.motion_bucket(2.0) == 254
    assert i2v.motion_bucket(5.0) == 255


SHIPPED = Path(WEIGHTS_DIR) / i2v.SUBFOLDER


@pytest.fixture(scope="module")
def shipped():
    if not (SHIPPED / "unet" / "config.json").is_file():
        pytest.skip(f"no trained i2v model at {SHIPPED}: python -m toyworld.train i2v")
    return i2v.load_components(WEIGHTS_DIR)


def test_shipped_model_loads_as_stable_video_diffusion(shipped):
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel

    assert isinstance(shipped.unet, UNetSpatioTemporalConditionModel)
    assert isinstance(shipped.vae, AutoencoderKLTemporalDecoder)
    assert shipped.unet.config.num_frames == i2v.FRAMES
    assert shipped.unet.config.cross_attention_dim == shipped.image_encoder.config.projection_dim
    assert shipped.scheduler.config.prediction_type == "v_prediction"


def test_the_configs_are_those_the_shipped_model_was_trained_with():
    # The scheduler's builds on the tiny model's: a change there must not change this model.
    if not (SHIPPED / "unet" / "config.json").is_file():
        pytest.skip(f"no trained i2v model at {SHIPPED}: python -m toyworld.train i2v")
    unet = json.loads((SHIPPED / "unet" / "config.json").read_text())
    scheduler = json.loads((SHIPPED / "scheduler" / "scheduler_config.json").read_text())
    assert {key: unet[key] for key in i2v.UNET_CONFIG} == i2v.UNET_CONFIG
    assert {key: scheduler[key] for key in i2v.SCHEDULER_CONFIG} == i2v.SCHEDULER_CONFIG


@pytest.mark.parametrize("frames, extended", [(i2v.FRAMES, False), (12, True)])
def test_shipped_model_samples_with_exvideo(shipped, frames, extended):
    from pytest_ablation.methods.exvideo import ExVideoSampler, extend_unet

    unet = extend_unet(copy.deepcopy(shipped.unet), max_frames=frames) if extended else None
    image = sample_videos(1, 1, seed=9)[0][0, 0]
    video = ExVideoSampler(shipped, unet=unet)(image, frames=frames, steps=2, seed=0).video
    assert video.shape == (frames, 3, 32, 32)
    assert video.min() >= 0 and video.max() <= 1
    assert float(video.std()) > 0.01  # a picture, not a constant


def test_the_training_clips_bounce(shipped):
    # Bouncing shapes keep their size and speed at any length, so an extended video goes on
    # with the motion the model learnt; a straight path would have to shrink or slow down.
    from toyworld.training import training_seed

    pool = i2v.encode_pool(shipped, 3, seed=0, noise_aug_strength=0.02, generator=torch.Generator().manual_seed(0))
    for motion, same in (("bounce", True), ("straight", False)):
        videos, _, scenes = sample_videos(3, i2v.FRAMES, seed=training_seed(0, 0), motion=motion)
        means = shipped.vae.encode(videos.flatten(0, 1) * 2 - 1).latent_dist.mean
        speeds = torch.tensor([video[0].speed for video in scenes], dtype=torch.float32)
        assert torch.allclose(pool.means, means.reshape(pool.means.shape), atol=1e-5) == same
        if same:
            assert torch.equal(pool.speeds, speeds)
