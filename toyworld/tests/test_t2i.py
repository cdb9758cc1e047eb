"""The toy world's text-to-image stage: UNet training, the diffusers folder, sampling."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from pytest_ablation.toyworld import WEIGHTS_DIR
from pytest_ablation.toyworld.data import captions
from toyworld import t2i as toy_t2i
from toyworld import vae as toy_vae

HIDDEN = 64


def checksum(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def text_parts():
    """A byte-level CLIP tokenizer and a small random text encoder of the shipped width."""
    from transformers import CLIPTextConfig, CLIPTextModel

    from pytest_ablation.models.tokenizer import build_clip_tokenizer

    tokenizer = build_clip_tokenizer(16)
    config = CLIPTextConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=HIDDEN,
        intermediate_size=128,
        projection_dim=HIDDEN,
        num_hidden_layers=1,
        num_attention_heads=4,
        max_position_embeddings=16,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        text_encoder = CLIPTextModel(config).eval().requires_grad_(False)
    return tokenizer, text_encoder


@pytest.fixture(scope="module")
def frozen_vae():
    vae = toy_vae.build_vae(0).eval().requires_grad_(False)
    vae.register_to_config(scaling_factor=0.5)
    return vae


@pytest.fixture(scope="module")
def pool(text_parts, frozen_vae):
    tokenizer, text_encoder = text_parts
    return toy_t2i.LatentPool(frozen_vae, tokenizer, text_encoder, count=48, seed=0)


def test_unet_has_stable_diffusions_layout_at_toy_size():
    unet = toy_t2i.build_unet(HIDDEN, seed=0)
    names = [name for name, _ in unet.named_modules()]
    self_attention = [n for n in names if n.endswith("attn1")]
    cross_attention = [n for n in names if n.endswith("attn2")]
    assert self_attention and len(self_attention) == len(cross_attention)
    assert unet.config.cross_attention_dim == HIDDEN
    assert [type(b).__name__ for b in unet.down_blocks] == ["CrossAttnDownBlock2D", "DownBlock2D"]
    assert [type(b).__name__ for b in unet.up_blocks] == ["UpBlock2D", "CrossAttnUpBlock2D"]
    # Small enough to sample many videos on a CPU.
    assert sum(p.numel() for p in unet.parameters()) < 5_000_000
    sample = unet(torch.randn(2, 4, 8, 8), 10, encoder_hidden_states=torch.randn(2, 5, HIDDEN))
    assert sample.sample.shape == (2, 4, 8, 8)


def test_the_configs_are_those_the_shipped_model_was_trained_with():
    # They build on the tiny model's configs: a change there must not change this model.
    folder = WEIGHTS_DIR / toy_t2i.FOLDER
    if not (folder / "unet" / "config.json").is_file():
        pytest.skip(f"no trained t2i model at {folder}: python -m toyworld.train t2i")
    unet = json.loads((folder / "unet" / "config.json").read_text())
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    expected = toy_t2i.unet_config(unet["cross_attention_dim"])
    assert {key: unet[key] for key in expected} == expected
    assert {key: scheduler[key] for key in toy_t2i.DDIM_CONFIG} == toy_t2i.DDIM_CONFIG


def test_ddim_config_matches_the_training_schedule():
    ddim, ddpm = toy_t2i.ddim_scheduler(), toy_t2i.ddpm_scheduler()
    assert torch.allclose(ddim.alphas_cumprod, ddpm.alphas_cumprod)
    assert ddim.config.clip_sample is False
    assert ddim.config.set_alpha_to_one is False
    assert ddim.config.steps_offset == 1
    assert ddim.config.prediction_type == "epsilon"


def test_pool_scales_latents_and_drops_captions(pool, frozen_vae):
    generator = torch.Generator().manual_seed(0)
    latents, context = pool.batch(16, generator, drop=0.0)
    assert latents.shape == (16, 4, 8, 8)
    assert context.shape[0] == 16 and context.shape[-1] == HIDDEN
    empty = pool.context[pool.empty]
    assert not any(torch.equal(row, empty) for row in context)
    _, dropped = pool.batch(16, generator, drop=1.0)
    assert all(torch.equal(row, empty) for row in dropped)
    # Means are scaled by the VAE's factor before diffusion sees them.
    assert pool.scaling_factor == frozen_vae.config.scaling_factor
    # Every caption's row is the text encoder's output for that caption.
    assert len(pool.texts) == len(captions())


def test_a_few_steps_lower_the_loss_and_change_only_the_unet(pool, text_parts, frozen_vae):
    _, text_encoder = text_parts
    unet = toy_t2i.build_unet(HIDDEN, seed=0)
    frozen_before = (checksum(text_encoder), checksum(frozen_vae))
    unet_before = checksum(unet)
    scheduler = toy_t2i.ddpm_scheduler()
    latents, context = pool.batch(16, torch.Generator().manual_seed(5), drop=0.0)

    def fixed_loss(model) -> float:
        with torch.no_grad():
            generator = torch.Generator().manual_seed(6)
            return toy_t2i.diffusion_loss(model, latents, context, scheduler, generator).item()

    start = fixed_loss(unet)
    ema, losses = toy_t2i.train_unet(unet, pool, steps=12, batch_size=8, seed=0, progress=None)

    assert len(losses) == 12
    assert fixed_loss(unet) < 0.8 * start
    assert checksum(unet) != unet_before
    # The average trails the trained weights but has moved from the start.
    assert checksum(ema) not in (unet_before, checksum(unet))
    assert (checksum(text_encoder), checksum(frozen_vae)) == frozen_before


def test_the_same_seed_trains_the_same_unet(pool):
    first, second = toy_t2i.build_unet(HIDDEN, seed=0), toy_t2i.build_unet(HIDDEN, seed=0)
    toy_t2i.train_unet(first, pool, steps=2, batch_size=4, seed=3, progress=None)
    toy_t2i.train_unet(second, pool, steps=2, batch_size=4, seed=3, progress=None)
    assert checksum(first) == checksum(second)


def write_folder(root, text_parts, vae, unet):
    """A complete SD folder from in-memory parts, as the text, vae and t2i stages leave it."""
    tokenizer, text_encoder = text_parts
    folder = root / toy_t2i.FOLDER
    tokenizer.save_pretrained(folder / "tokenizer")
    text_encoder.save_pretrained(folder / "text_encoder")
    toy_vae.save_vae(vae, folder / "vae")
    toy_t2i.save_pipeline_parts(unet, folder)
    return folder


def test_written_folder_loads_and_samples_a_video(tmp_path, text_parts, frozen_vae):
    from pytest_ablation.methods.zs2 import ZS2Sampler

    unet = toy_t2i.build_unet(HIDDEN, seed=0)
    folder = write_folder(tmp_path, text_parts, frozen_vae, unet)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert index["scheduler"] == ["diffusers", "DDIMScheduler"]

    parts = toy_t2i.load_components(tmp_path)
    assert type(parts.scheduler).__name__ == "DDIMScheduler"
    assert parts.scheduler.config.steps_offset == 1
    # Stored in half precision, loaded back as float32: the weights rounded to float16.
    assert parts.unet.dtype == torch.float32
    assert checksum(parts.unet) == checksum(unet.to(torch.float16).float())
    video = ZS2Sampler(parts, frames=3, steps=2, progress=False)("a red circle", seed=0)
    assert video.shape == (3, 3, 32, 32)
    assert video.min() >= 0.0 and video.max() <= 1.0


def test_training_stage_needs_the_text_stage_first(tmp_path):
    with pytest.raises(FileNotFoundError, match="train text"):
        toy_t2i.train(tmp_path, steps=1, progress=lambda line: None)


SHIPPED = WEIGHTS_DIR / toy_t2i.FOLDER
SHIPPED_PARTS = ("model_index.json", "unet", "scheduler", "vae", "text_encoder", "tokenizer")


@pytest.mark.skipif(
    not all((SHIPPED / part).exists() for part in SHIPPED_PARTS),
    reason=f"the toy text-to-image weights are not trained yet ({SHIPPED}); run: python -m toyworld.train text vae t2i",
)
def test_shipped_model_loads_and_samples_a_video():
    from pytest_ablation.methods.zs2 import ZS2Sampler

    parts = toy_t2i.load_components()
    assert parts.unet.config.cross_attention_dim == parts.text_encoder.config.hidden_size
    sampler = ZS2Sampler(parts, frames=4, steps=4, momentum=0.98, progress=False)
    video = sampler("a red circle", seed=0)
    assert video.shape == (4, 3, 32, 32)
    assert video.min() >= 0.0 and video.max() <= 1.0
    # A trained model draws something: not a flat image.
    assert video.std() > 0.02
