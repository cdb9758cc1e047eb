"""Image to long video: shapes, seeding, the recorded condition, and refusals."""

from __future__ import annotations

import copy

import pytest
import torch

from numerics import assert_other_video, assert_same_video

from pytest_ablation.run.generation import GenerationRequest, check_output
from pytest_ablation.methods.exvideo import ExVideoSampler, extend_unet, scene_image


@pytest.fixture(scope="module")
def sampler(tiny_svd):
    return ExVideoSampler(tiny_svd, extend_unet(copy.deepcopy(tiny_svd.unet), max_frames=32), decode_chunk_size=5)


def image(seed=0, size=16):
    return scene_image(size, size, generator=torch.Generator().manual_seed(seed))


def test_a_video_past_25_frames(sampler) -> None:
    condition = image()
    out = sampler(condition, frames=27, steps=1, seed=3)
    assert out.video.shape == (27, 3, 16, 16)
    assert 0.0 <= float(out.video.min()) and float(out.video.max()) <= 1.0
    assert torch.equal(out.condition_image, condition)
    check_output(out, generator="exvideo")


def test_seeded(sampler) -> None:
    a = sampler(image(), frames=4, steps=2, seed=3).video
    b = sampler(image(), frames=4, steps=2, generator=torch.Generator().manual_seed(3)).video
    c = sampler(image(), frames=4, steps=2, seed=4).video
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_generator_protocol(sampler) -> None:
    def request(seed):
        return GenerationRequest(
            prompt="shapes",
            seed=seed,
            generator=torch.Generator().manual_seed(seed),
            frames=5,
            steps=1,
            height=16,
            width=24,
            guidance_scale=3.0,
            fps=7,
            device="cpu",
        )

    out = sampler.generate(request(1))
    assert out.video.shape == (5, 3, 16, 24) and out.condition_image.shape == (3, 16, 24)
    assert torch.equal(out.video, sampler.generate(request(1)).video)
    identity = sampler.cache_identity()
    # The tiny SVD's config says 8 trained frames: the ids of every kind depend on it.
    assert identity["unet"] == {"max_frames": 32, "position": "trainable", "identity_conv": True, "trained_frames": 8}
    with pytest.raises(ValueError, match="takes no configuration"):
        sampler.generate(GenerationRequest(**{**request(1).__dict__, "config": {"position": "static"}}))


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.rand(1, 3, 16, 16), r"got shape \(1, 3, 16, 16\); expected \(3, H, W\)"),
        (torch.rand(4, 16, 16), r"expected \(3, H, W\)"),
        (torch.rand(3, 12, 16), "multiples of 8"),
        (torch.rand(3, 16, 16) + 1, r"\[0, 1\]"),
        (torch.zeros(3, 16, 16, dtype=torch.uint8), "dtype torch.uint8"),
        ([[0.0]], "expected a torch.Tensor"),
    ],
)
def test_a_bad_image_is_refused(sampler, bad, message) -> None:
    with pytest.raises(ValueError, match=message):
        sampler(bad, frames=2, steps=1)


def test_frame_limits(sampler, tiny_svd) -> None:
    with pytest.raises(ValueError, match="frames: got 33; this UNet samples at most 32"):
        sampler(image(), frames=33, steps=1)
    plain = ExVideoSampler(tiny_svd)  # SVD as it is: its own num_frames
    with pytest.raises(ValueError, match="at most 8 frames"):
        plain(image(), frames=9, steps=1)
    assert plain(image(), frames=8, steps=1).video.shape[0] == 8


def test_a_batched_video_does_not_depend_on_its_batch_mates(sampler) -> None:
    # 64x64 px: at 16x16 the tiny UNet's deepest feature maps are 1x1, where group norms
    # divide by a near-zero spread and magnify rounding a hundredfold.
    def request(seed):
        return GenerationRequest(
            prompt="shapes",
            seed=seed,
            generator=torch.Generator().manual_seed(seed),
            frames=4,
            steps=2,
            height=64,
            width=64,
            guidance_scale=3.0,
            fps=7,
            device="cpu",
        )

    first = sampler.generate_batch([request(1), request(2), request(3)])
    second = sampler.generate_batch([request(1), request(8), request(9)])
    assert torch.equal(first[0].video, second[0].video)
    assert torch.equal(first[0].condition_image, second[0].condition_image)
    alone = sampler.generate(request(1))
    assert torch.equal(alone.condition_image, first[0].condition_image)
    assert_same_video(first[0].video, alone.video, "batched vs alone")
    assert_other_video(first[1].video, alone.video)
    with pytest.raises(ValueError, match="the requests differ in frames"):
        sampler.generate_batch([request(1), GenerationRequest(**{**request(2).__dict__, "frames": 5})])


def test_sampling_shows_no_deprecation_warning(sampler) -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sampler(image(), frames=4, steps=2, seed=3)
    assert [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)] == []
