"""Released models leave the GPU: after a switch of model group, no live reference to them
remains anywhere (weak references, not the pool's list), and the device's memory returns to
what it held before they loaded. On the emulated CUDA device of ``cuda_emulation``, whose
memory count is the bytes of the tensors alive on it."""

from __future__ import annotations

import dataclasses
import gc
import weakref

import pytest
import torch

from cuda_emulation import emulated_cuda
from pytest_ablation.run.devices import DeviceAssignment
from pytest_ablation.run.generation import GenerationRequest
from pytest_ablation.methods.exvideo import exvideo_on_profile
from pytest_ablation.methods.fixtures import exvideo_variants, zs2_sampler
from pytest_ablation.run.pool import ModelPool
from pytest_ablation.profiles import load_profile


def request(settings, config=None, **overrides):
    return GenerationRequest.from_settings(
        dataclasses.replace(settings, **overrides),
        prompt="a red ball",
        seed=0,
        device="cuda:0",
        config=config or {},
        seed_index=0,
    )


def models_of(pool) -> list[weakref.ref]:
    """Weak references to every module and parameter of the pool's loaded models."""
    refs = []
    for role in pool.loaded():
        model = pool.get(role)
        parts = [getattr(model, name) for name in vars(model)] if hasattr(model, "__dict__") else [model]
        for part in parts:
            if isinstance(part, torch.nn.Module):
                refs.append(weakref.ref(part))
                refs.extend(weakref.ref(p) for p in part.parameters())
    return refs


@pytest.fixture
def tiny():
    return load_profile("tiny")


def test_a_group_switch_frees_the_zs2_model_and_its_memory(tiny):
    with emulated_cuda(devices=1):
        pool = ModelPool(tiny, DeviceAssignment(device="cuda:0"))
        pool.enter_group("models:zs2")
        before = torch.cuda.memory_allocated(0)
        sampler = zs2_sampler(pool)
        video = sampler.generate(request(tiny.settings, frames=2, steps=1))
        assert video.video.device.type == "cpu"  # what the cache stores
        held = models_of(pool)
        assert held and torch.cuda.memory_allocated(0) > before
        assert next(pool.get("sd").unet.parameters()).device == torch.device("cuda", 0)

        pool.enter_group("models:exvideo")
        gc.collect()
        alive = [ref() for ref in held if ref() is not None]
        assert alive == [], f"{len(alive)} released model parts still referenced"
        assert torch.cuda.memory_allocated(0) == before
        # The sampler, still in use by the fixture, loads the model again when next asked.
        sampler.generate(request(tiny.settings, frames=2, steps=1))
        assert pool.loaded() == ["sd"]


@pytest.mark.slow
def test_a_group_switch_frees_exvideos_model_unet_copy_and_tuning_data(tiny, tmp_path):
    from pytest_ablation.run.cache import ResultCache

    on_profile = exvideo_on_profile(tiny)
    recipe = dataclasses.replace(on_profile.recipe, steps=1, clips=1, tuning_runs=1)
    with emulated_cuda(devices=1):
        pool = ModelPool(tiny, DeviceAssignment(device="cuda:0"))
        pool.enter_group("models:exvideo")
        before = torch.cuda.memory_allocated(0)
        variants = exvideo_variants(pool, ResultCache(tmp_path / "cache"), recipe, on_profile)
        variants.generate(
            request(
                tiny.settings,
                {"position": "trainable", "identity_conv": True},
                frames=recipe.max_frames,
                steps=1,
                height=recipe.height,
                width=recipe.width,
            )
        )
        held = models_of(pool) + [weakref.ref(variants._unet)]
        held += [weakref.ref(p) for p in variants._unet.parameters()]
        assert torch.cuda.memory_allocated(0) > before

        pool.enter_group("models:zs2")
        gc.collect()
        alive = [ref() for ref in held if ref() is not None]
        assert alive == [], f"{len(alive)} released model parts still referenced"
        assert torch.cuda.memory_allocated(0) == before


@pytest.mark.slow
def test_after_an_out_of_memory_error_the_models_are_freed_and_the_next_test_runs(tiny):
    # A device a little too small for the sampling: the first video runs out of memory.
    with emulated_cuda(devices=1) as emulator:
        pool = ModelPool(tiny, DeviceAssignment(device="cuda:0"))
        pool.enter_group("models:zs2")
        sampler = zs2_sampler(pool)
        assert sampler.components is not None  # loads the model
        loaded = torch.cuda.memory_allocated(0)
        held = models_of(pool)
        emulator.memory.limit = loaded + 1024
        with pytest.raises(torch.cuda.OutOfMemoryError):
            sampler.generate(request(tiny.settings, frames=2, steps=1))
        pool.release()
        gc.collect()
        assert [ref() for ref in held if ref() is not None] == []
        assert torch.cuda.memory_allocated(0) == 0
        emulator.memory.limit = None
        assert sampler.generate(request(tiny.settings, frames=2, steps=1)).video.shape[0] == 2
