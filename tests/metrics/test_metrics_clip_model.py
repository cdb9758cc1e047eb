"""ClipModel: construction, determinism, checkpoints, batching, and feature memoisation."""

from __future__ import annotations

import json

import pytest
import torch
from numerics import assert_same_function_output

from pytest_ablation.metrics import TINY_MODEL, ClipModel, MetricInput, get_metric

CLIP_METRICS = [
    "clip_score",
    "temporal_consistency",
    "video_coherence",
    "condition_consistency",
    "video_quality",
]


def test_random_weights_are_seeded_and_leave_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a = ClipModel.from_open_clip(TINY_MODEL, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = ClipModel.from_open_clip(TINY_MODEL, seed=0)
    c = ClipModel.from_open_clip(TINY_MODEL, seed=1)
    assert a.identity == b.identity
    assert a.identity["weights_sha256"] != c.identity["weights_sha256"]
    frames = torch.rand(2, 3, 64, 64)
    assert torch.equal(a.encode_images(frames), b.encode_images(frames))


def test_identity_is_stable_and_serialisable(tiny_clip):
    identity = tiny_clip.identity
    assert identity == tiny_clip.identity
    assert identity["name"] == TINY_MODEL
    assert identity["pretrained"] == "random(seed=0)"
    assert len(identity["weights_sha256"]) == 64
    assert json.loads(json.dumps(identity, sort_keys=True)) == identity


def test_tiny_model_has_the_documented_shape(tiny_clip):
    assert tiny_clip.image_size == (64, 64)
    assert tiny_clip.device == torch.device("cpu")
    assert tiny_clip.encode_images(torch.rand(3, 3, 64, 64)).shape == (3, 64)
    assert tiny_clip.encode_texts(["a", "b"]).shape == (2, 64)


def test_loads_a_local_checkpoint(tmp_path):
    source = ClipModel.from_open_clip(TINY_MODEL, seed=3)
    path = tmp_path / "tiny-clip.pt"
    torch.save(source.model.state_dict(), path)
    loaded = ClipModel.from_open_clip(TINY_MODEL, pretrained=path)
    frames = torch.rand(3, 3, 64, 64)
    # The same weights; a checkpoint's tensors may be laid out differently in memory.
    assert_same_function_output(loaded.encode_images(frames), source.encode_images(frames), "images")
    assert_same_function_output(loaded.encode_texts(["a cat"]), source.encode_texts(["a cat"]), "texts")
    assert loaded.identity["weights_sha256"] == source.identity["weights_sha256"]
    assert loaded.identity["pretrained"] == "tiny-clip.pt"


def test_features_are_normalised_and_independent_of_batching(tiny_clip):
    frames = torch.rand(7, 3, 80, 96)
    whole = tiny_clip.encode_images(frames)
    assert torch.allclose(whole.norm(dim=-1), torch.ones(7), atol=1e-5)
    small_batches = ClipModel(tiny_clip.model, tiny_clip.tokenizer, name=TINY_MODEL, pretrained=None, batch_size=2)
    assert torch.allclose(small_batches.encode_images(frames), whole, atol=1e-5)
    one_by_one = torch.cat([tiny_clip.encode_images(f[None]) for f in frames])
    assert torch.allclose(one_by_one, whole, atol=1e-5)
    texts = tiny_clip.encode_texts(["a cat", "a dog"])
    assert torch.allclose(texts.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_preprocessing_matches_open_clip_transform(tiny_clip):
    import numpy as np
    import open_clip
    from PIL import Image

    transform = open_clip.image_transform(
        tiny_clip.image_size[0], is_train=False, mean=tiny_clip.mean, std=tiny_clip.std
    )
    g = torch.Generator().manual_seed(0)
    for h, w in [(64, 64), (96, 128), (150, 100)]:
        frames = torch.nn.functional.avg_pool2d(torch.rand(2, 3, h, w, generator=g), 3, 1, 1)
        frames = (frames * 255).round() / 255
        ours = tiny_clip.preprocess(frames)
        pil = [Image.fromarray((f.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)) for f in frames]
        theirs = torch.stack([transform(image) for image in pil])
        assert ours.shape == theirs.shape
        # PIL rounds the resized image to uint8: one grey level is 1/255/std ~ 0.015 here.
        assert (ours - theirs).abs().max() < 0.02


def test_encode_texts_wants_a_list(tiny_clip):
    with pytest.raises(TypeError, match="list of strings"):
        tiny_clip.encode_texts("a cat")
    with pytest.raises(ValueError, match="at least one"):
        tiny_clip.encode_texts([])


class CountingClip(ClipModel):
    def __init__(self, base: ClipModel) -> None:
        super().__init__(base.model, base.tokenizer, name=base.name, pretrained=base.pretrained)
        self.image_calls: list[int] = []
        self.text_calls: list[tuple[str, ...]] = []

    def encode_images(self, frames):
        self.image_calls.append(frames.shape[0])
        return super().encode_images(frames)

    def encode_texts(self, texts):
        self.text_calls.append(tuple(texts))
        return super().encode_texts(texts)


def test_all_clip_metrics_share_one_pass_over_the_frames(tiny_clip, videos):
    model = CountingClip(tiny_clip)
    video = videos.noise(5)
    inp = MetricInput(video, text="a cat", image=videos.image(64, 64, seed=1), clip=model)
    scores = {name: get_metric(name).evaluate(inp) for name in CLIP_METRICS}
    scores.update({name: get_metric(name).evaluate(inp) for name in CLIP_METRICS})
    assert sorted(model.image_calls) == [1, 5]  # the condition image, then the video once
    assert sorted(model.text_calls) == [("Good photo.", "Bad photo."), ("a cat",)]
    # A second video with the same prompt reuses the text features, not the image ones.
    other = MetricInput(videos.noise(3, seed=1), text="a cat", clip=model)
    for name in ["clip_score", "video_quality"]:
        get_metric(name).evaluate(other)
    assert len(model.text_calls) == 2
    assert sorted(model.image_calls) == [1, 3, 5]
    # The memoised features give the same numbers as a fresh computation.
    from pytest_ablation.metrics import clip_score, video_coherence

    assert scores["clip_score"].value == clip_score(video, "a cat", tiny_clip)
    assert scores["video_coherence"].value == video_coherence(video, tiny_clip)


@pytest.mark.parametrize(
    ("name", "tag", "expected"),
    [
        ("ViT-L-14", "openai", True),
        ("ViT-B-32", "openai", True),
        ("ViT-B-32", "laion2b_s34b_b79k", False),
        (TINY_MODEL, "no-such-tag", False),
    ],
)
def test_openai_tags_get_the_activation_they_were_trained_with(name, tag, expected):
    from pytest_ablation.metrics.clip_model import _tag_uses_quick_gelu

    assert _tag_uses_quick_gelu(name, tag) is expected
