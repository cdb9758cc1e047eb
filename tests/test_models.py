"""Models: the tiny builders, loading every kind from local files, and model identities."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

# Everything here reads local folders; the hub must never be needed.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch
from numerics import assert_other_function_output, assert_same_function_output

from pytest_ablation.models import (
    StableDiffusionComponents,
    StableVideoDiffusionComponents,
    load_model,
    model_identity,
)
from pytest_ablation.models.identity import HashMemo
from pytest_ablation.models.tiny import (
    build_tiny_stable_diffusion,
    build_tiny_stable_video_diffusion,
    config_sha256,
)
from pytest_ablation.models.tokenizer import build_clip_tokenizer
from pytest_ablation.profiles import ModelSpec, ProfileError, load_profile

PROMPTS = ["a red ball bouncing on a wooden floor", "a sailboat drifting on a calm blue lake"]


def weights_digest(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def components_digest(components) -> dict[str, str]:
    return {name: weights_digest(module) for name, module in components.modules().items()}


@pytest.fixture(scope="module")
def tiny_sd() -> StableDiffusionComponents:
    return build_tiny_stable_diffusion(seed=0)


@pytest.fixture(scope="module")
def tiny_svd() -> StableVideoDiffusionComponents:
    return build_tiny_stable_video_diffusion(seed=0)


def public(config) -> dict:
    return {key: value for key, value in config.items() if not key.startswith("_")}


def encode(sd: StableDiffusionComponents, prompts: list[str]) -> torch.Tensor:
    tok = sd.tokenizer
    ids = tok(
        prompts,
        padding="max_length",
        max_length=tok.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    with torch.no_grad():
        return sd.text_encoder(ids)[0]


def sd_outputs(sd: StableDiffusionComponents) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    latents = torch.randn(2, 4, 8, 8, generator=gen)
    with torch.no_grad():
        text = encode(sd, PROMPTS)
        noise = sd.unet(latents, 500, encoder_hidden_states=text).sample
        image = sd.vae.decode(latents / sd.vae.config.scaling_factor).sample
        posterior = sd.vae.encode(image.clamp(-1, 1)).latent_dist.mean
    return {"text": text, "noise": noise, "image": image, "posterior": posterior}


def svd_outputs(svd: StableVideoDiffusionComponents, frames: int = 3) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(2)
    image = torch.rand(1, 3, 64, 64, generator=gen)
    latents = torch.randn(1, frames, 8, 8, 8, generator=gen)
    pixels = svd.feature_extractor(images=image, do_rescale=False, return_tensors="pt").pixel_values
    with torch.no_grad():
        embeds = svd.image_encoder(pixels).image_embeds
        noise = svd.unet(
            latents,
            20.0,
            encoder_hidden_states=embeds[:, None],
            added_time_ids=torch.tensor([[7.0, 127.0, 0.02]]),
        ).sample
        video = svd.vae.decode(latents[0, :, :4], num_frames=frames).sample
    return {"pixels": pixels, "embeds": embeds, "noise": noise, "video": video}


# --- tokenizer ---------------------------------------------------------------------------


def test_tokenizer_works_offline() -> None:
    tok = build_clip_tokenizer()
    assert type(tok).__name__ in ("CLIPTokenizer", "CLIPTokenizerFast")
    batch = tok(
        PROMPTS,
        padding="max_length",
        max_length=tok.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    ids = batch.input_ids
    assert ids.shape == (2, tok.model_max_length) == (2, 77)
    assert (ids[:, 0] == tok.bos_token_id).all()
    assert tok.pad_token_id == tok.eos_token_id
    assert not torch.equal(ids[0], ids[1])
    assert tok.decode(ids[0], skip_special_tokens=True) == PROMPTS[0]
    long = tok(["x" * 500], padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    assert long.input_ids.shape == (1, 77) and long.input_ids[0, -1] == tok.eos_token_id


# --- tiny builders -----------------------------------------------------------------------


def test_tiny_sd_is_deterministic_and_leaves_the_rng_alone(tiny_sd) -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    again = build_tiny_stable_diffusion(seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(456)
    assert components_digest(again) == components_digest(tiny_sd)
    other = build_tiny_stable_diffusion(seed=1)
    assert components_digest(other)["unet"] != components_digest(tiny_sd)["unet"]


def test_tiny_svd_is_deterministic(tiny_svd) -> None:
    torch.manual_seed(789)
    assert components_digest(build_tiny_stable_video_diffusion(seed=0)) == components_digest(tiny_svd)


@pytest.mark.slow
def test_same_weights_in_another_process(tiny_sd, tiny_svd) -> None:
    code = textwrap.dedent(
        """
        import hashlib, json, torch
        from pytest_ablation.models.tiny import (
            build_tiny_stable_diffusion, build_tiny_stable_video_diffusion, config_sha256)
        torch.manual_seed(2024)
        def digest(module):
            h = hashlib.sha256()
            for key, t in sorted(module.state_dict().items()):
                h.update(key.encode()); h.update(t.contiguous().numpy().tobytes())
            return h.hexdigest()
        out = {}
        for kind, build in (("tiny-stable-diffusion", build_tiny_stable_diffusion),
                            ("tiny-stable-video-diffusion", build_tiny_stable_video_diffusion)):
            out[kind] = {"config": config_sha256(kind),
                         "weights": {n: digest(m) for n, m in build(seed=0).modules().items()}}
        print(json.dumps(out))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    other = json.loads(result.stdout.strip().splitlines()[-1])
    assert other["tiny-stable-diffusion"] == {
        "config": config_sha256("tiny-stable-diffusion"),
        "weights": components_digest(tiny_sd),
    }
    assert other["tiny-stable-video-diffusion"] == {
        "config": config_sha256("tiny-stable-video-diffusion"),
        "weights": components_digest(tiny_svd),
    }


def test_config_hash_tracks_the_config() -> None:
    sd = config_sha256("tiny-stable-diffusion")
    assert sd == config_sha256("tiny-stable-diffusion") and len(sd) == 64
    assert sd != config_sha256("tiny-stable-video-diffusion")
    assert config_sha256("tiny-stable-video-diffusion", 16) != config_sha256("tiny-stable-video-diffusion")


def test_tiny_sd_has_self_and_cross_attention(tiny_sd) -> None:
    processors = tiny_sd.unet.attn_processors
    attn1 = [name for name in processors if ".attn1." in name]
    attn2 = [name for name in processors if ".attn2." in name]
    assert attn1 and len(attn1) == len(attn2) == len(processors) // 2
    assert tiny_sd.unet.config.cross_attention_dim == tiny_sd.text_encoder.config.hidden_size
    assert type(tiny_sd.scheduler).__name__ == "DDIMScheduler"
    assert not tiny_sd.unet.training and not any(p.requires_grad for p in tiny_sd.unet.parameters())


def test_tiny_sd_forward_shapes(tiny_sd) -> None:
    out = sd_outputs(tiny_sd)
    assert out["text"].shape == (2, 77, 32)
    assert out["noise"].shape == (2, 4, 8, 8)
    assert out["image"].shape == (2, 3, 64, 64)  # Stable Diffusion's factor-8 latents
    assert out["posterior"].shape == (2, 4, 8, 8)
    assert all(torch.isfinite(t).all() for t in out.values())


def test_tiny_svd_structure_and_forward(tiny_svd) -> None:
    from diffusers.models.transformers.transformer_temporal import TransformerSpatioTemporalModel

    temporal = [m for m in tiny_svd.unet.modules() if isinstance(m, TransformerSpatioTemporalModel)]
    assert len(temporal) >= 3 and all(hasattr(m, "time_pos_embed") for m in temporal)
    assert tiny_svd.unet.config.num_frames == 8
    assert type(tiny_svd.scheduler).__name__ == "EulerDiscreteScheduler"
    assert tiny_svd.scheduler.config.prediction_type == "v_prediction"
    out = svd_outputs(tiny_svd, frames=3)
    assert out["pixels"].shape == (1, 3, 224, 224)
    assert out["embeds"].shape == (1, 32)
    assert out["noise"].shape == (1, 3, 4, 8, 8)
    assert out["video"].shape == (3, 3, 64, 64)
    assert all(torch.isfinite(t).all() for t in out.values())


def test_tiny_sampling_loop_gives_a_video(tiny_sd) -> None:
    """Prompt encoding, classifier-free guidance over frames in one UNet call, VAE decode."""
    settings = load_profile("tiny").settings
    frames, sd = settings.frames, tiny_sd
    cond = encode(sd, [settings.prompts[0], ""])
    embeddings = torch.cat([cond[1:].expand(frames, -1, -1), cond[:1].expand(frames, -1, -1)])
    latents = torch.randn(
        frames,
        4,
        settings.height // 8,
        settings.width // 8,
        generator=torch.Generator().manual_seed(0),
    )
    sd.scheduler.set_timesteps(settings.steps)
    with torch.no_grad():
        for t in sd.scheduler.timesteps:
            uncond, text = sd.unet(torch.cat([latents] * 2), t, encoder_hidden_states=embeddings).sample.chunk(2)
            latents = sd.scheduler.step(uncond + settings.guidance_scale * (text - uncond), t, latents).prev_sample
        video = (sd.vae.decode(latents / sd.vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1)
    assert video.shape == (frames, 3, settings.height, settings.width)
    # Not saturated: the random decoder still gives mid-range, varied pixels.
    assert 0.2 < video.mean() < 0.8 and video.std() > 0.02


# --- loading through profiles ------------------------------------------------------------


def test_load_model_tiny_kinds(tiny_sd) -> None:
    profile = load_profile("tiny")
    sd = load_model(profile.model("sd"), "cpu")
    assert isinstance(sd, StableDiffusionComponents)
    assert components_digest(sd) == components_digest(tiny_sd)
    assert isinstance(load_model(profile.model("svd"), "cpu"), StableVideoDiffusionComponents)


def test_round_trip_through_local_folders(tmp_path: Path, tiny_sd, tiny_svd) -> None:
    tiny_sd.save_pretrained(tmp_path / "weights" / "sd")
    tiny_svd.save_pretrained(tmp_path / "weights" / "svd")
    index = json.loads((tmp_path / "weights" / "sd" / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline" and index["unet"][1] == "UNet2DConditionModel"
    path = tmp_path / "local.toml"
    path.write_text(
        '[profile]\nname = "local"\nextends = "tiny"\n\n'
        '[models.sd]\nkind = "stable-diffusion"\nsource = "./weights/sd"\n'
        "local_files_only = true\n\n"
        '[models.svd]\nkind = "stable-video-diffusion"\nsource = "weights/svd"\n'
    )
    profile = load_profile(str(path))
    sd = load_model(profile.model("sd"), "cpu")
    svd = load_model(profile.model("svd"), "cpu")
    assert isinstance(sd, StableDiffusionComponents) and isinstance(svd, StableVideoDiffusionComponents)
    assert components_digest(sd) == components_digest(tiny_sd)
    assert components_digest(svd) == components_digest(tiny_svd)
    assert public(sd.scheduler.config) == public(tiny_sd.scheduler.config)
    assert type(svd.scheduler) is type(tiny_svd.scheduler)
    assert public(svd.scheduler.config) == public(tiny_svd.scheduler.config)
    # Bit-identical weights (above); the outputs agree up to float32 evaluation order.
    loaded, built = sd_outputs(sd), sd_outputs(tiny_sd)
    for name, value in built.items():
        assert_same_function_output(loaded[name], value, name)
    loaded, built = svd_outputs(svd), svd_outputs(tiny_svd)
    for name, value in built.items():
        assert_same_function_output(loaded[name], value, name)
    assert not sd.unet.training and not any(p.requires_grad for p in svd.unet.parameters())


def test_scheduler_and_subfolder_options(tmp_path: Path, tiny_sd) -> None:
    tiny_sd.save_pretrained(tmp_path / "sd")
    (tmp_path / "sd" / "unet").rename(tmp_path / "sd" / "unet_ema")
    spec = ModelSpec(
        "sd",
        "stable-diffusion",
        str(tmp_path / "sd"),
        {
            "subfolders": {"unet": "unet_ema"},
            "scheduler": "EulerDiscreteScheduler",
            "scheduler_config": {"timestep_spacing": "trailing"},
            "dtype": "bfloat16",
        },
    )
    sd = load_model(spec, "cpu")
    assert type(sd.scheduler).__name__ == "EulerDiscreteScheduler"
    assert sd.scheduler.config.timestep_spacing == "trailing"
    assert sd.unet.dtype == torch.bfloat16 and sd.text_encoder.dtype == torch.bfloat16
    bad = ModelSpec(
        "sd",
        "stable-diffusion",
        str(tmp_path / "sd"),
        {"scheduler": "Nope", "subfolders": {"unet": "unet_ema"}},
    )
    with pytest.raises(ProfileError, match="Nope"):
        load_model(bad, "cpu")


def test_open_clip_kinds_and_checkpoint_round_trip(tmp_path: Path) -> None:
    clip = load_model(load_profile("tiny").model("clip"), "cpu")
    video = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    again = load_model(ModelSpec("clip", "tiny-open-clip"), "cpu")
    assert torch.equal(again.encode_images(video), clip.encode_images(video))
    checkpoint = tmp_path / "clip" / "tiny.pt"
    checkpoint.parent.mkdir()
    torch.save(clip.model.state_dict(), checkpoint)
    path = tmp_path / "clip.toml"
    path.write_text(
        '[profile]\nname = "c"\nextends = "tiny"\n\n'
        '[models.clip]\nkind = "open-clip"\nsource = "clip/tiny.pt"\n'
        'name = "pytest-ablation-tiny"\n'
    )
    spec = load_profile(str(path)).model("clip")
    assert spec.source == str(checkpoint.resolve())
    loaded = load_model(spec, "cpu")
    assert_same_function_output(loaded.encode_images(video), clip.encode_images(video), "images")
    assert_same_function_output(loaded.encode_texts(PROMPTS), clip.encode_texts(PROMPTS), "texts")
    other_seed = load_model(ModelSpec("clip", "tiny-open-clip", options={"seed": 1}), "cpu")
    assert_other_function_output(other_seed.encode_images(video), clip.encode_images(video))


# --- callable kind -----------------------------------------------------------------------


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch) -> str:
    (tmp_path / "my_models_mod.py").write_text(
        "def build(device, **options):\n"
        "    return {'device': device, 'options': options}\n"
        "class Factory:\n"
        "    @staticmethod\n"
        "    def make(device):\n"
        "        return device\n"
        "not_callable = 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_models_mod"


def test_callable_kind(user_module: str, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[profile]\nname = "c"\nextends = "tiny"\n\n'
        f'[models.judge]\nkind = "callable"\nsource = "{user_module}:build"\n'
        "width = 3\nsizes = [1, 2]\n"
    )
    spec = load_profile(str(path)).model("judge")
    result = load_model(spec, "cpu")
    assert result == {"device": "cpu", "options": {"width": 3, "sizes": [1, 2]}}
    assert load_model(ModelSpec("f", "callable", f"{user_module}:Factory.make"), "meta") == "meta"


@pytest.mark.parametrize(
    "source, message",
    [
        ("no_such_module_xyz:build", "no_such_module_xyz"),
        ("my_models_mod:missing", "has no attribute 'missing'"),
        ("my_models_mod:not_callable", "not callable"),
    ],
)
def test_bad_callable(user_module: str, source: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message) as err:
        load_model(ModelSpec("f", "callable", source), "cpu")
    assert source in str(err.value) and "models.f.source" in str(err.value)


# --- identities --------------------------------------------------------------------------


def test_identity_of_tiny_kinds_is_stable_and_json() -> None:
    profile = load_profile("tiny")
    for role in profile.roles:
        first = model_identity(profile.model(role))
        assert json.loads(json.dumps(first)) == first == model_identity(load_profile("tiny").model(role))
        assert first["kind"] == profile.model(role).kind and first["seed"] == 0
        assert first["config_sha256"]
    seeded = model_identity(ModelSpec("sd", "tiny-stable-diffusion", options={"seed": 1}))
    assert seeded != model_identity(profile.model("sd"))
    halved = model_identity(ModelSpec("sd", "tiny-stable-diffusion", options={"dtype": "float16"}))
    assert halved["options"] == {"dtype": "float16"}


def test_identity_of_hub_ids_and_callables() -> None:
    sd15 = load_profile("sd15")
    ident = model_identity(sd15.model("sd"))
    assert ident["source"] == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert ident["revision"] == "main" and ident["options"]["dtype"] == "float16"
    pinned = ModelSpec("sd", "stable-diffusion", "org/model", {"revision": "abc123"})
    assert model_identity(pinned)["revision"] == "abc123"
    clip = model_identity(sd15.model("clip"))
    assert (clip["source"], clip["name"]) == ("openai", "ViT-L-14")
    spec = ModelSpec("f", "callable", "pkg.mod:fn", {"k": 1})
    assert model_identity(spec) == {"kind": "callable", "source": "pkg.mod:fn", "options": {"k": 1}}


def test_identity_of_local_folders_follows_the_content(tmp_path: Path, tiny_sd) -> None:
    folder = tmp_path / "sd"
    tiny_sd.save_pretrained(folder)
    (folder / "notes").mkdir()
    (folder / "notes" / "big.bin").write_bytes(b"not read by the loader")
    spec = ModelSpec("sd", "stable-diffusion", str(folder))
    cache = tmp_path / "cache"
    first = model_identity(spec, cache_dir=cache)
    assert first["source"] == "local" and len(first["sha256"]) == 64
    assert "revision" not in first
    assert model_identity(spec, cache_dir=cache) == first
    memo = json.loads((cache / "file-hashes.json").read_text())
    assert not any("notes" in key for key in memo)  # only the parts the loader reads
    assert any(key.endswith("diffusion_pytorch_model.safetensors") for key in memo)

    (folder / "notes" / "big.bin").write_bytes(b"changed, but irrelevant")
    assert model_identity(spec, cache_dir=cache) == first

    weights = next((folder / "unet").glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    changed = model_identity(spec, cache_dir=cache)
    assert changed["sha256"] != first["sha256"] and changed["source"] == first["source"]


def test_identity_of_local_weights_does_not_depend_on_their_location(tmp_path: Path, tiny_sd) -> None:
    here, there = tmp_path / "a" / "sd", tmp_path / "b" / "sd-copy"
    tiny_sd.save_pretrained(here)
    tiny_sd.save_pretrained(there)
    cache = tmp_path / "cache"
    assert model_identity(ModelSpec("sd", "stable-diffusion", str(here)), cache_dir=cache) == model_identity(
        ModelSpec("sd", "stable-diffusion", str(there)), cache_dir=cache
    )


def test_file_hashes_are_memoised(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(os.urandom(1 << 16))
    cache = tmp_path / "cache"
    memo = HashMemo(cache)
    digest = memo.sha256(weights)
    memo.flush()
    assert digest == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert memo.hashed == [str(weights.resolve())]

    fresh = HashMemo(cache)  # as a later run or another worker would
    assert fresh.sha256(weights) == digest and fresh.hashed == []

    os.utime(weights, ns=(1, 1))  # same bytes, new stamp: hashed again, same digest
    again = HashMemo(cache)
    assert again.sha256(weights) == digest and again.hashed == [str(weights.resolve())]

    spec = ModelSpec("c", "open-clip", str(weights), {"name": "x"})
    ident = model_identity(spec, cache_dir=cache)
    assert ident["sha256"] == digest  # a lone checkpoint is named by its own sha256
    assert ident["source"] == "local" and ident["name"] == "x"


def test_default_memo_lives_under_the_user_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "w.bin").write_bytes(b"abc")
    model_identity(ModelSpec("c", "open-clip", str(tmp_path / "w.bin"), {"name": "x"}))
    assert (tmp_path / "pytest-ablation" / "file-hashes.json").is_file()


def test_float16_keeps_the_video_vae_in_float32_as_diffusers_svd_pipeline_does() -> None:
    svd = build_tiny_stable_video_diffusion(seed=0, dtype="float16")
    assert svd.unet.dtype == torch.float16 and svd.image_encoder.dtype == torch.float16
    assert svd.vae.config.force_upcast and svd.vae.dtype == torch.float32
    sd = build_tiny_stable_diffusion(seed=0, dtype="float16")
    # StableDiffusionPipeline keeps SD 1.x's VAE in float16; so does the loader.
    assert sd.unet.dtype == torch.float16 and sd.vae.dtype == torch.float16
    bf16 = build_tiny_stable_video_diffusion(seed=0, dtype="bfloat16")
    assert bf16.vae.dtype == torch.bfloat16  # diffusers upcasts only float16


def test_a_float16_svd_folder_loads_with_its_vae_in_float32(tmp_path: Path, tiny_svd) -> None:
    tiny_svd.save_pretrained(tmp_path / "svd")
    spec = ModelSpec("svd", "stable-video-diffusion", str(tmp_path / "svd"), {"dtype": "float16"})
    svd = load_model(spec, "cpu")
    assert svd.unet.dtype == torch.float16 and svd.vae.dtype == torch.float32
