"""The toy world's autoencoder stage: training, the latent scale, the saved folder."""

from __future__ import annotations

import json

import pytest
import torch

from pytest_ablation.toyworld.data import sample_images
from toyworld import vae as toy_vae
from toyworld.training import save_folder_atomic


def state_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def fixed_loss(model, batch: torch.Tensor) -> float:
    """The training loss on one batch with one posterior draw, the same before and after."""
    with torch.no_grad():
        return toy_vae.vae_loss(model, batch, torch.Generator().manual_seed(123)).item()


def test_config_gives_32px_images_8x8_latents_and_sampler_scale():
    model = toy_vae.build_vae(0)
    images = sample_images(2, seed=5)[0]
    with torch.no_grad():
        latents = model.encode(toy_vae.to_model_range(images)).latent_dist.mean
        decoded = model.decode(latents).sample
    assert latents.shape == (2, 4, 8, 8)
    assert decoded.shape == (2, 3, 32, 32)
    # ZS2Sampler derives the latent scale from the number of levels: it must be 4 here.
    assert 2 ** (len(model.config.block_out_channels) - 1) == 32 // 8


def test_build_is_seeded_and_leaves_the_global_generator_alone():
    before = torch.random.get_rng_state()
    first, again, other = toy_vae.build_vae(3), toy_vae.build_vae(3), toy_vae.build_vae(4)
    assert torch.equal(torch.random.get_rng_state(), before)
    name = "encoder.conv_in.weight"
    assert torch.equal(first.state_dict()[name], again.state_dict()[name])
    assert not torch.equal(first.state_dict()[name], other.state_dict()[name])


def test_training_batches_are_reproducible_and_in_model_range():
    first = next(toy_vae.training_batches(8, seed=1))
    again = next(toy_vae.training_batches(8, seed=1))
    other = next(toy_vae.training_batches(8, seed=2))
    assert first.shape == (8, 3, 32, 32)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert first.min() >= -1.0 and first.max() <= 1.0


def test_a_few_steps_lower_the_loss_and_change_only_the_vae():
    model = toy_vae.build_vae(0)
    batch = next(toy_vae.training_batches(8, seed=99))
    held_out = sample_images(8, seed=12)[0]
    before_loss = fixed_loss(model, batch)
    before_psnr = toy_vae.reconstruction_psnr(model, held_out)
    before = state_copy(model)
    rng_before = torch.random.get_rng_state()

    losses = toy_vae.train_vae(model, steps=15, batch_size=6, seed=0, progress=None)

    assert len(losses) == 15
    assert fixed_loss(model, batch) < 0.8 * before_loss
    assert toy_vae.reconstruction_psnr(model, held_out) > before_psnr
    after = model.state_dict()
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    # Both halves learn: the encoder's input layer and the decoder's output layer moved.
    assert "encoder.conv_in.weight" in changed
    assert "decoder.conv_out.weight" in changed
    # Every draw came from the local generators: the global stream is untouched.
    assert torch.equal(torch.random.get_rng_state(), rng_before)


def test_the_same_seed_trains_the_same_weights():
    first, second = toy_vae.build_vae(0), toy_vae.build_vae(0)
    toy_vae.train_vae(first, steps=3, batch_size=4, seed=7, progress=None)
    toy_vae.train_vae(second, steps=3, batch_size=4, seed=7, progress=None)
    for name, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[name]), name


def test_scaling_factor_makes_the_latents_unit_variance():
    model = toy_vae.build_vae(0)
    images = sample_images(64, seed=11)[0]
    factor = toy_vae.measure_scaling_factor(model, images)
    latents = toy_vae.encode_latents(model, images, sample=True, seed=toy_vae.SCALE_SEED)
    assert latents.std().item() * factor == pytest.approx(1.0, rel=1e-4)


def test_saved_folder_round_trips_through_from_pretrained(tmp_path):
    from diffusers import AutoencoderKL

    model = toy_vae.build_vae(0)
    model.register_to_config(scaling_factor=0.731)
    folder = toy_vae.save_vae(model, tmp_path / "t2i" / "vae")
    assert (folder / "diffusion_pytorch_model.safetensors").is_file()
    assert json.loads((folder / "config.json").read_text())["scaling_factor"] == 0.731
    loaded = AutoencoderKL.from_pretrained(folder)
    assert loaded.config.scaling_factor == pytest.approx(0.731)
    assert loaded.config.block_out_channels == model.config.block_out_channels
    for name, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name]), name
    # No staging folders are left beside it.
    assert [p.name for p in folder.parent.iterdir()] == ["vae"]


def test_saving_again_replaces_the_folder(tmp_path):
    first, second = toy_vae.build_vae(0), toy_vae.build_vae(1)
    target = tmp_path / toy_vae.SUBFOLDER
    toy_vae.save_vae(first, target)
    toy_vae.save_vae(second, target)
    loaded = toy_vae.load_vae(tmp_path)
    name = "encoder.conv_in.weight"
    assert torch.equal(loaded.state_dict()[name], second.state_dict()[name])
    assert [p.name for p in target.parent.iterdir()] == ["vae"]


def test_loading_an_untrained_vae_names_the_stage_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m toyworld.train vae"):
        toy_vae.load_vae(tmp_path)


def test_a_failed_save_keeps_the_old_folder(tmp_path):
    target = tmp_path / "vae"
    toy_vae.save_vae(toy_vae.build_vae(0), target)
    before = (target / "config.json").read_text()

    def broken(staging):
        (staging / "config.json").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_folder_atomic(broken, target)
    assert (target / "config.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vae"]
