"""The toy world's judge: its training step, and the shipped weights as the metrics load them."""

from __future__ import annotations

import pytest
import torch

from pytest_ablation.toyworld import WEIGHTS_DIR
from pytest_ablation.toyworld.data import captions, sample_images, video_captions
from toyworld import judge
from toyworld.training import class_index, contrastive_loss

SHIPPED = WEIGHTS_DIR / judge.FOLDER / judge.WEIGHTS_FILE


def batch_loss(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    tokens = judge.tokenizer()(captions())
    with torch.no_grad():
        image_features = model.encode_image(judge.normalise(images, model))
        text_features = model.encode_text(tokens)
        return float(contrastive_loss(image_features, text_features, labels, model.logit_scale.exp()))


def test_a_few_steps_lower_the_loss_and_touch_only_the_words_in_use():
    model = judge.build(seed=0)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    images, texts, _ = sample_images(48, seed=99)
    labels = class_index(texts)
    model.train()  # batch statistics on both sides: the running ones need many steps
    start = batch_loss(model, images, labels)
    judge.fit(model, steps=8, seed=0, batch_size=24)
    model.train()
    assert batch_loss(model, images, labels) < start - 0.05

    tokenize = judge.tokenizer()
    used = torch.unique(tokenize(video_captions()))
    used = used[used != 0]  # open_clip pads with 0, after the end token: never attended to
    embedding = model.token_embedding.weight.detach()
    unused = torch.ones(embedding.shape[0], dtype=torch.bool)
    unused[used] = False
    changed_rows = (embedding != before["token_embedding.weight"]).any(dim=1)
    # Words no caption uses get no gradient and Adam with no weight decay leaves them be.
    assert not changed_rows[unused].any()
    assert changed_rows[used].all()
    # Every other weight of both towers learned something.
    for name, parameter in model.named_parameters():
        if name in ("token_embedding.weight", "positional_embedding"):
            continue
        assert not torch.equal(parameter.detach(), before[name]), f"{name} did not change"


def test_the_registered_architecture_is_small_and_sees_32_pixel_images():
    config = judge.architecture()
    assert config["vision_cfg"]["image_size"] == 32
    assert config["text_cfg"]["context_length"] == 16
    assert judge.tokenizer()(["a purple triangle moving down"]).shape == (1, 16)


@pytest.mark.skipif(not SHIPPED.is_file(), reason=f"no trained judge at {SHIPPED} yet (python -m toyworld.train judge)")
def test_the_shipped_judge_loads_through_the_open_clip_kind_and_classifies_fresh_images():
    from pytest_ablation.models import load_model as load
    from pytest_ablation.profiles import ModelSpec

    spec = ModelSpec(role="clip", kind="open-clip", source=str(SHIPPED), options={"name": judge.JUDGE_MODEL})
    clip = load(spec, "cpu")
    assert clip.name == judge.JUDGE_MODEL and clip.image_size == (32, 32)
    images, texts, _ = sample_images(40, seed=31_337)
    scores = clip.encode_images(images) @ clip.encode_texts(captions()).T
    predicted = [captions()[i] for i in scores.argmax(dim=1).tolist()]
    correct = sum(p == t for p, t in zip(predicted, texts, strict=True))
    assert correct >= 34, f"{correct}/40 fresh images classified correctly"
    # A video prompt points at its shape and colour: the motion words do not mislead it.
    moving = clip.encode_texts(["a blue cross moving up", "a red circle moving up"])
    plain = clip.encode_texts(["a blue cross", "a red circle"])
    assert (moving * plain).sum(-1).min() > (moving[0] * plain[1]).sum()
