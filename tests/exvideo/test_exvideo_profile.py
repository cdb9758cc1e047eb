"""The ``exsvd`` profile kind: SVD-XT's components plus an ExSVD file, from local folders."""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import save_file

from pytest_ablation.methods.exvideo import (
    exvideo_parameter_names,
    exvideo_settings,
    exvideo_state_dict,
    svd_xt_unet,
    to_exsvd_state_dict,
)
from pytest_ablation.models import StableVideoDiffusionComponents, load_model, model_identity
from pytest_ablation.profiles import ModelSpec, ProfileError, load_profile

from .conftest import xt_layout_config


def test_the_builtin_profile() -> None:
    profile = load_profile("exsvd")
    spec = profile.model("svd")
    assert spec.kind == "exsvd" and spec.source == "stabilityai/stable-video-diffusion-img2vid-xt"
    assert spec.options["exsvd"] == "ECNU-CILab/ExVideo-SVD-128f-v1"
    assert {"sd", "svd", "clip"} <= set(profile.models)  # every study runs on it
    ident = model_identity(spec)
    assert ident["kind"] == "exsvd" and ident["exsvd"]["source"] == "ECNU-CILab/ExVideo-SVD-128f-v1"
    # The training-time studies tune from plain SVD-XT, not from the already tuned ExSVD.
    base = profile.model("svd_base")
    assert base.kind == "stable-video-diffusion" and base.source == spec.source
    assert model_identity(base) != ident


def test_unknown_options_are_named() -> None:
    with pytest.raises(ProfileError, match="exsvd_frames: unknown option for kind 'exsvd'"):
        ModelSpec("svd", "exsvd", "owner/name", {"exsvd_frames": 3})
    with pytest.raises(ProfileError, match="source: missing"):
        ModelSpec("svd", "exsvd")


@pytest.fixture(scope="module")
def local_weights(tmp_path_factory, tiny_svd):
    """A diffusers folder with SVD-XT's UNet layout (narrow) and an ExSVD file for it."""
    root = tmp_path_factory.mktemp("weights")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        source = svd_xt_unet(40, config=xt_layout_config(32), device="cpu")
        plain = copy.deepcopy(source)
        trained = set(exvideo_parameter_names(source))
        with torch.no_grad():
            for name, param in source.named_parameters():
                if name in trained:
                    param.add_(torch.randn(param.shape) * 0.01)
    from diffusers import UNetSpatioTemporalConditionModel

    base_unet = UNetSpatioTemporalConditionModel(**xt_layout_config(32))
    names = set(base_unet.state_dict())
    base_unet.load_state_dict({k: v for k, v in plain.state_dict().items() if k in names})
    parts = StableVideoDiffusionComponents(
        tiny_svd.image_encoder, tiny_svd.feature_extractor, base_unet, tiny_svd.vae, tiny_svd.scheduler
    )
    parts.save_pretrained(root / "svd-xt")
    save_file(to_exsvd_state_dict(exvideo_state_dict(source), unet=source), str(root / "model.fp16.safetensors"))
    return root, exvideo_state_dict(source)


def test_loads_svd_xt_plus_exsvd_from_local_files(local_weights, tmp_path) -> None:
    root, expected = local_weights
    spec = ModelSpec("svd", "exsvd", str(root / "svd-xt"), {"exsvd": str(root)})
    components = load_model(spec, "cpu")
    unet = components.unet
    assert exvideo_settings(unet).to_dict() == {
        "max_frames": 40,
        "position": "trainable",
        "identity_conv": True,
        "trained_frames": 25,
    }
    loaded = exvideo_state_dict(unet)
    assert loaded.keys() == expected.keys() and all(torch.equal(loaded[k], expected[k]) for k in expected)
    assert not unet.training and not any(p.requires_grad for p in unet.parameters())
    ident = model_identity(spec, cache_dir=tmp_path)
    assert ident["exsvd"]["source"] == str((root / "model.fp16.safetensors").resolve())
    assert len(ident["exsvd"]["sha256"]) == 64 and len(ident["sha256"]) == 64


@pytest.mark.slow
def test_load_exsvd_unet_from_a_folder_and_a_file(local_weights) -> None:
    from pytest_ablation.methods.exvideo import load_exsvd_unet

    root, expected = local_weights
    unet = load_exsvd_unet(str(root / "svd-xt"), str(root / "model.fp16.safetensors"))
    loaded = exvideo_state_dict(unet)
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)
    with pytest.raises(FileNotFoundError, match="holds no 'model.fp16.safetensors'"):
        load_exsvd_unet(str(root / "svd-xt"), str(root / "svd-xt"))


def exvideo_profile(tmp_path, table: str):
    path = tmp_path / f"exvideo-{len(list(tmp_path.iterdir()))}.toml"
    path.write_text(f'[profile]\nname = "p"\nextends = "toy"\n\n[methods.exvideo]\n{table}\n')
    return load_profile(path)


RECIPE = "steps = 4, clips = 2, frames = 8, height = 32, width = 32, max_frames = 32"


@pytest.mark.parametrize(
    "table, message",
    [
        (
            f'recipe = {{ {RECIPE}, gradient_checkpointing = "no" }}',
            r"methods\.exvideo\.recipe\.gradient_checkpointing: got 'no'; expected true or false",
        ),
        (
            f"recipe = {{ {RECIPE}, gradient_checkpointing = 0 }}",
            r"methods\.exvideo\.recipe\.gradient_checkpointing: got 0; expected true or false",
        ),
        (
            f'recipe = {{ {RECIPE}, seed = "abc" }}',
            r"methods\.exvideo\.recipe\.seed: got 'abc'; expected a whole number >= 0",
        ),
        (f"recipe = {{ {RECIPE}, seed = -1 }}", r"methods\.exvideo\.recipe\.seed: got -1"),
        (f"recipe = {{ {RECIPE}, seed = true }}", r"methods\.exvideo\.recipe\.seed: got True"),
        (
            'sample_at_recipe_size = "yes"',
            r"methods\.exvideo\.sample_at_recipe_size: got 'yes'; expected true or false",
        ),
    ],
)
def test_recipe_booleans_and_seed_must_be_toml_values_of_their_type(tmp_path, table, message) -> None:
    from pytest_ablation.methods.exvideo import exvideo_on_profile

    profile = exvideo_profile(tmp_path, table)
    with pytest.raises(ValueError, match=message):
        exvideo_on_profile(profile)


def test_recipe_booleans_and_seed_of_their_type_are_taken(tmp_path) -> None:
    from pytest_ablation.methods.exvideo import exvideo_on_profile

    for flag in ("true", "false"):
        recipe = exvideo_on_profile(
            exvideo_profile(tmp_path, f"recipe = {{ {RECIPE}, gradient_checkpointing = {flag}, seed = 5 }}")
        ).recipe
        assert recipe.gradient_checkpointing is (flag == "true") and recipe.seed == 5
