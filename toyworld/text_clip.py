"""The generators' own CLIP (stage ``text``): the text encoder of the text-to-image model and
the image encoder of the image-to-video model, trained together, contrastively, on the toy
world's captions and images.

They are the real transformers classes, saved where Stable Diffusion and Stable Video
Diffusion pipelines look for them:

    t2i/tokenizer/          CLIPTokenizer: every caption word is one token
    t2i/text_encoder/       CLIPTextModel, hidden size 64 (the T2I UNet's cross-attention)
    i2v/image_encoder/      CLIPVisionModelWithProjection, 32x32 input, projection 64
    i2v/feature_extractor/  CLIPImageProcessor for 32x32 images

There is no separate text projection: the text encoder's pooled output (hidden size 64) is
matched directly with the image encoder's projected embedding (64), so the two shipped
models alone reproduce the zero-shot accuracy. Nothing is shared with the judge: other
classes, another seed, another tokenizer.
"""

from __future__ import annotations

import json
import time
from collections import Counter
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

TOKENIZER = "t2i/tokenizer"
TEXT_ENCODER = "t2i/text_encoder"
IMAGE_ENCODER = "i2v/image_encoder"
FEATURE_EXTRACTOR = "i2v/feature_extractor"

MAX_LENGTH = 16
HIDDEN_SIZE = 64
PROJECTION_DIM = 64
IMAGE_SIZE = 32
# CLIP's normalisation, kept so that code written for the released encoders works unchanged.
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)

DEFAULT_STEPS = 1200
BATCH_SIZE = 64
PEAK_LEARNING_RATE = 2e-3
# Keeps these weight draws and caption variants apart from the judge's for the same --seed.
SEED_OFFSET = 2_000

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
END_OF_WORD = "</w>"


# -- tokenizer ------------------------------------------------------------------------------
def learn_merges(words: list[str]) -> list[tuple[str, str]]:
    """Byte-pair merges that turn each of ``words`` into a single token.

    Ordinary BPE learning run to the end: merge the most frequent adjacent pair (ties broken
    alphabetically, so the result is fixed), until every word is one symbol. Encoding a
    word with merges applied in rank order replays exactly these steps.
    """
    pieces = {word: list(word[:-1]) + [word[-1] + END_OF_WORD] for word in dict.fromkeys(words)}
    merges: list[tuple[str, str]] = []
    while True:
        pairs = Counter((left, right) for symbols in pieces.values() for left, right in zip(symbols, symbols[1:]))
        if not pairs:
            return merges
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        for word, symbols in pieces.items():
            merged: list[str] = []
            index = 0
            while index < len(symbols):
                if index + 1 < len(symbols) and (symbols[index], symbols[index + 1]) == best:
                    merged.append(symbols[index] + symbols[index + 1])
                    index += 2
                else:
                    merged.append(symbols[index])
                    index += 1
            pieces[word] = merged


def tokenizer_files(words: list[str]) -> dict[str, str]:
    """vocab.json, merges.txt and tokenizer_config.json of a CLIPTokenizer for ``words``.

    The vocabulary is CLIP's layout at toy size: every byte alone and at a word's end (so
    any text still tokenizes), the merged pieces, then the start and end tokens.
    """
    from pytest_ablation.models.tokenizer import byte_vocabulary

    merges = learn_merges(words)
    tokens = [token for token in byte_vocabulary() if token not in (BOS, EOS)]
    tokens += [left + right for left, right in merges]
    tokens += [BOS, EOS]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    config = {
        "model_max_length": MAX_LENGTH,
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "pad_token": EOS,
        "do_lower_case": True,
        "tokenizer_class": "CLIPTokenizer",
    }
    return {
        "vocab.json": json.dumps(vocab, ensure_ascii=False, indent=0),
        # CLIP's merges file starts with a version line that the reader skips.
        "merges.txt": "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges),
        "tokenizer_config.json": json.dumps(config, indent=2),
    }


def write_tokenizer(folder: Path) -> Any:
    """Write the tokenizer of every caption word into ``folder`` and load it back."""
    from transformers import CLIPTokenizer

    from pytest_ablation.files import write_text_atomic
    from pytest_ablation.toyworld.data import vocabulary

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in tokenizer_files(vocabulary()).items():
        write_text_atomic(folder / name, text)
    return CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)


def tokenize(tokenizer: Any, texts: list[str]) -> torch.Tensor:
    """Padded token ids (N, MAX_LENGTH), as Stable Diffusion pipelines call the tokenizer."""
    return tokenizer(
        texts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


# -- models ---------------------------------------------------------------------------------
class GeneratorClip(torch.nn.Module):
    """The two towers trained together, plus the learned temperature (not shipped)."""

    def __init__(self, text_encoder: Any, image_encoder: Any):
        super().__init__()
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.logit_scale = torch.nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))

    def encode_texts(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(input_ids=token_ids).pooler_output

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] images at IMAGE_SIZE to projected embeddings (N, PROJECTION_DIM)."""
        return self.image_encoder(pixel_values=normalise(images)).image_embeds


def normalise(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def text_config(tokenizer: Any) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=4 * HIDDEN_SIZE,
        projection_dim=PROJECTION_DIM,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MAX_LENGTH,
        hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def vision_config() -> Any:
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        hidden_size=64,
        intermediate_size=128,
        projection_dim=PROJECTION_DIM,
        num_hidden_layers=3,
        num_attention_heads=4,
        image_size=IMAGE_SIZE,
        patch_size=4,
        hidden_act="quick_gelu",
    )


def build(tokenizer: Any, seed: int = 0) -> GeneratorClip:
    """Freshly initialised towers; the same ``seed`` gives the same weights anywhere."""
    from transformers import CLIPTextModel, CLIPVisionModelWithProjection

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + SEED_OFFSET)
        text_encoder = CLIPTextModel(text_config(tokenizer))
        image_encoder = CLIPVisionModelWithProjection(vision_config())
    return GeneratorClip(text_encoder, image_encoder)


def fit(
    model: GeneratorClip,
    tokenizer: Any,
    *,
    steps: int,
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
    peak_learning_rate: float = PEAK_LEARNING_RATE,
    progress: Progress | None = None,
) -> list[float]:
    """Train both towers in place on fresh images each step; returns each step's loss
    (``training.fit_contrastive``)."""
    from pytest_ablation.toyworld.data import sample_images

    rng = np.random.default_rng(seed + SEED_OFFSET)

    def step_loss(step: int) -> torch.Tensor:
        images, texts, _ = sample_images(batch_size, seed=training_seed(seed + SEED_OFFSET, step))
        return contrastive_loss(
            model.encode_images(images),
            model.encode_texts(tokenize(tokenizer, caption_variants(rng))),
            class_index(texts),
            model.logit_scale.exp(),
        )

    return fit_contrastive(
        model,
        step_loss,
        stage="text",
        steps=steps,
        peak_learning_rate=peak_learning_rate,
        progress=progress,
    )


def image_processor() -> Any:
    """SVD's feature extractor at the toy size: 32x32, CLIP's normalisation."""
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        do_resize=True,
        size={"shortest_edge": IMAGE_SIZE},
        do_center_crop=True,
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_rescale=True,
        do_normalize=True,
        image_mean=list(IMAGE_MEAN),
        image_std=list(IMAGE_STD),
        do_convert_rgb=True,
    )


def save(model: GeneratorClip, out: Path) -> None:
    """The towers and the processor into their pipeline folders under ``out`` (the
    tokenizer is written before training, into ``out/t2i/tokenizer``)."""
    out = Path(out)
    model.text_encoder.save_pretrained(out / TEXT_ENCODER, safe_serialization=True)
    model.image_encoder.save_pretrained(out / IMAGE_ENCODER, safe_serialization=True)
    image_processor().save_pretrained(out / FEATURE_EXTRACTOR)


def load(out: Path) -> tuple[Any, Any, Any, Any]:
    """(tokenizer, text_encoder, image_encoder, feature_extractor) as shipped, in eval mode."""
    from transformers import (
        CLIPImageProcessor,
        CLIPTextModel,
        CLIPTokenizer,
        CLIPVisionModelWithProjection,
    )

    out = Path(out)
    missing = [
        part for part in (TOKENIZER, TEXT_ENCODER, IMAGE_ENCODER, FEATURE_EXTRACTOR) if not (out / part).is_dir()
    ]
    if missing:
        raise FileNotFoundError(f"no {', '.join(missing)} under {out}; run: python -m toyworld.train text")
    tokenizer = CLIPTokenizer.from_pretrained(str(out / TOKENIZER), local_files_only=True)
    text_encoder = CLIPTextModel.from_pretrained(out / TEXT_ENCODER).eval()
    image_encoder = CLIPVisionModelWithProjection.from_pretrained(out / IMAGE_ENCODER).eval()
    feature_extractor = CLIPImageProcessor.from_pretrained(out / FEATURE_EXTRACTOR)
    return tokenizer, text_encoder, image_encoder, feature_extractor


@torch.no_grad()
def held_out_accuracy(model: GeneratorClip, tokenizer: Any, count: int = 1000) -> float:
    """Zero-shot accuracy over all twenty captions on held-out images."""
    from pytest_ablation.toyworld.data import captions

    images, labels = evaluation_images(count)
    model.eval()
    image_features = model.encode_images(images)
    text_features = model.encode_texts(tokenize(tokenizer, captions()))
    return zero_shot_accuracy(image_features, text_features, labels)


def quality(out: Path, *, progress: Progress = print) -> dict[str, float]:
    """Zero-shot accuracy of the shipped towers, as loaded from disk, on held-out images."""
    tokenizer, text_encoder, image_encoder, _ = load(out)
    model = GeneratorClip(text_encoder, image_encoder)
    accuracy = held_out_accuracy(model, tokenizer)
    progress(f"text: zero-shot accuracy {accuracy:.1%} of the generators' CLIP over 20 captions")
    return {"zero_shot_accuracy": accuracy}


def train(out: Path, *, steps: int | None = None, seed: int = 0, progress: Progress = print) -> dict[str, float]:
    from transformers.utils import logging as transformers_logging

    steps = check_steps(steps, DEFAULT_STEPS)
    # Its per-file progress bars would bury the training's own progress lines.
    transformers_logging.disable_progress_bar()
    start = time.perf_counter()
    out = Path(out)
    tokenizer = write_tokenizer(out / TOKENIZER)
    model = build(tokenizer, seed)
    losses = fit(model, tokenizer, steps=steps, seed=seed, progress=progress)
    save(model.eval(), out)
    return contrastive_figures(losses, start, lambda: quality(out, progress=progress))


__all__ = [
    "GeneratorClip",
    "build",
    "fit",
    "learn_merges",
    "load",
    "quality",
    "save",
    "tokenize",
    "train",
    "write_tokenizer",
]
