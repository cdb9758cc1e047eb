"""The judge: a small open_clip model trained on the toy world, used only to score videos.

Its architecture is the open_clip config ``pytest-ablation-toy-judge`` (shipped beside the
metrics' tiny config and registered with it), so the shipped weights load through the
ordinary ``open-clip`` model kind:

    [models.clip]
    kind = "open-clip"
    name = "pytest-ablation-toy-judge"
    source = "<weights>/judge/open_clip_model.safetensors"

It shares no weights, no code path and no seed with the generators' CLIP (``text_clip``),
so a generator cannot score well by matching the judge's own features.

The image tower is a small ModifiedResNet (convolutions learn shapes from few steps far
better than a ViT of the same cost). The text tower is 64 wide: at 32, a run was seen to
settle with every "a green ..." caption on one point, shapes of that colour indistinct.
Most of the file is open_clip's 49k-word token table, kept because the judge uses
open_clip's own tokenizer; it is stored in half precision.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toyworld.training import (
    Progress,
    caption_variants,
    check_steps,
    class_index,
    contrastive_figures,
    contrastive_loss,
    evaluation_images,
    fit_contrastive,
    training_seed,
    zero_shot_accuracy,
)

JUDGE_MODEL = "pytest-ablation-toy-judge"
FOLDER = "judge"
WEIGHTS_FILE = "open_clip_model.safetensors"
CONFIG_FILE = "open_clip_config.json"

DEFAULT_STEPS = 600
BATCH_SIZE = 64
PEAK_LEARNING_RATE = 2e-3
SHAPE_LOSS_WEIGHT = 0.5
# Keeps the judge's weight draws apart from the generators' CLIP for the same --seed.
SEED_OFFSET = 1_000


def architecture() -> dict:
    """The registered open_clip config of the judge."""
    import open_clip

    import pytest_ablation.metrics.clip_model  # noqa: F401  (registers the package's configs)

    config = open_clip.get_model_config(JUDGE_MODEL)
    if config is None:  # pragma: no cover - only if the shipped config went missing
        raise FileNotFoundError(f"open_clip config {JUDGE_MODEL!r} is not registered")
    return config


def build(seed: int = 0) -> torch.nn.Module:
    """A freshly initialised judge; the same ``seed`` gives the same weights anywhere."""
    from pytest_ablation.metrics.clip_model import ClipModel

    clip = ClipModel.from_open_clip(JUDGE_MODEL, pretrained=None, seed=seed + SEED_OFFSET)
    return clip.model.train()


@functools.lru_cache(maxsize=1)
def tokenizer():
    """open_clip's tokenizer at the judge's context length (built once: it reads 49k merges)."""
    import open_clip

    architecture()
    return open_clip.get_tokenizer(JUDGE_MODEL)


def normalise(images: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    """[0, 1] images to the judge's input, as ``ClipModel.preprocess`` does at 32x32."""
    import open_clip

    config = open_clip.get_model_preprocess_cfg(model)
    mean = torch.tensor(config["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(config["std"]).view(1, 3, 1, 1)
    return (images - mean) / std


def fit(
    model: torch.nn.Module,
    *,
    steps: int,
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
    peak_learning_rate: float = PEAK_LEARNING_RATE,
    progress: Progress | None = None,
) -> list[float]:
    """Train ``model`` in place for ``steps`` steps of fresh images; returns each step's loss
    (``training.fit_contrastive``)."""
    from pytest_ablation.toyworld.data import SHAPES, sample_images

    tokenize = tokenizer()
    shape_texts = [f"a {shape}" for shape in SHAPES]
    rng = np.random.default_rng(seed + SEED_OFFSET)

    def step_loss(step: int) -> torch.Tensor:
        images, texts, scenes = sample_images(batch_size, seed=training_seed(seed, step))
        image_features = model.encode_image(normalise(images, model))
        text_features = model.encode_text(tokenize(caption_variants(rng) + shape_texts))
        scale = model.logit_scale.exp()
        loss = contrastive_loss(image_features, text_features[: -len(SHAPES)], class_index(texts), scale)
        # Shape alone, whatever the colour: without it a run can settle on telling shapes
        # apart in some colours only (green shapes all alike was seen), a local optimum of
        # the full-caption loss that it does not leave.
        shape_loss = contrastive_loss(
            image_features,
            text_features[-len(SHAPES) :],
            torch.tensor([SHAPES.index(scene.shape) for scene in scenes]),
            scale,
        )
        return loss + SHAPE_LOSS_WEIGHT * shape_loss

    return fit_contrastive(
        model,
        step_loss,
        stage="judge",
        steps=steps,
        peak_learning_rate=peak_learning_rate,
        progress=progress,
    )


def save(model: torch.nn.Module, out: Path) -> Path:
    """Weights and config into ``out/judge``: the file the ``open-clip`` kind loads, and a
    config in open_clip's ``local-dir:`` layout (``model_cfg``, ``preprocess_cfg``)."""
    import open_clip
    from safetensors.torch import save_file

    folder = Path(out) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    # Half precision halves the file, most of which is open_clip's 49k-word token table;
    # loading casts back to the model's float32, and the quality figures are measured on
    # the weights as loaded.
    state = {
        key: (value.half() if value.is_floating_point() else value).detach().contiguous()
        for key, value in model.state_dict().items()
    }
    target = folder / WEIGHTS_FILE
    partial = target.with_name(target.name + ".partial")
    save_file(state, str(partial), metadata={"format": "pt", "model": JUDGE_MODEL})
    partial.replace(target)
    config = {
        "model_cfg": architecture(),
        "preprocess_cfg": open_clip.get_model_preprocess_cfg(model),
    }
    from pytest_ablation.files import write_json_atomic

    write_json_atomic(folder / CONFIG_FILE, config)
    return target


def load(out: Path, device: str = "cpu"):
    """The judge as the metrics see it: the ``ClipModel`` the ``open-clip`` model kind
    builds from the checkpoint file.

    The manifest check is left to the profile loaders and the CLIs: right after training
    the manifest still describes the previous weights, until the CLI refreshes it.
    """
    from pytest_ablation.metrics.clip_model import ClipModel

    path = Path(out) / FOLDER / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no judge weights at {path}; run: python -m toyworld.train judge")
    return ClipModel.from_open_clip(JUDGE_MODEL, pretrained=str(path.resolve()), device=device)


@torch.no_grad()
def zero_shot_classes(clip: Any, images: torch.Tensor, texts: list[str]) -> torch.Tensor:
    """The zero-shot class (an index into ``texts``) of each image (N, 3, H, W) by a loaded
    judge (``load``): the text whose features are nearest the image's, by cosine."""
    image_features = torch.nn.functional.normalize(clip.encode_images(images), dim=-1)
    text_features = torch.nn.functional.normalize(clip.encode_texts(texts), dim=-1)
    return (image_features @ text_features.T).argmax(dim=1)


def quality(out: Path, *, progress: Progress = print) -> dict[str, float]:
    """Zero-shot accuracy over all twenty captions on held-out images, as loaded from disk
    (plain captions, and captions with a motion phrase, which a still cannot show)."""
    from pytest_ablation.toyworld.data import captions

    clip = load(out)
    images, labels = evaluation_images()
    image_features = clip.encode_images(images)
    plain = zero_shot_accuracy(image_features, clip.encode_texts(captions()), labels)
    moving = [f"{text} moving left" for text in captions()]
    with_motion = zero_shot_accuracy(image_features, clip.encode_texts(moving), labels)
    figures = {"zero_shot_accuracy": plain, "zero_shot_accuracy_with_motion": with_motion}
    progress(
        f"judge: zero-shot accuracy {plain:.1%} over {len(captions())} captions "
        f"({with_motion:.1%} with 'moving left' appended), {len(labels)} held-out images"
    )
    return figures


def train(out: Path, *, steps: int | None = None, seed: int = 0, progress: Progress = print) -> dict[str, float]:
    steps = check_steps(steps, DEFAULT_STEPS)
    start = time.perf_counter()
    model = build(seed)
    losses = fit(model, steps=steps, seed=seed, progress=progress)
    save(model.eval(), Path(out))
    return contrastive_figures(losses, start, lambda: quality(Path(out), progress=progress))


def held_out_accuracy(model: torch.nn.Module, count: int = 500) -> float:
    """Zero-shot accuracy of an in-memory judge (no saving), for quick checks."""
    from pytest_ablation.toyworld.data import captions

    images, labels = evaluation_images(count)
    with torch.no_grad():
        model.eval()
        image_features = model.encode_image(normalise(images, model))
        text_features = model.encode_text(tokenizer()(captions()))
    return zero_shot_accuracy(image_features, text_features, labels)


__all__ = [
    "JUDGE_MODEL",
    "build",
    "fit",
    "held_out_accuracy",
    "load",
    "quality",
    "save",
    "train",
    "zero_shot_classes",
]
