"""What the toy world's training stages share: seeds, progress lines, the contrastive loss.

The two CLIPs (the judge and the generators' own) learn the same thing: to match an image of
a shape with its caption among all twenty captions. Each step draws fresh images, so there is
no fixed training set to overfit; a held-out evaluation set is drawn from its own seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from pytest_ablation.toyworld.data import COLOURS, DIRECTIONS, SHAPES, captions, sample_images

Progress = Callable[[str], None]

# Training batches are drawn from seeds below this bound and evaluation images from seeds
# above it, so a stage never scores itself on images it was trained on.
EVALUATION_SEED = 2**40
EVALUATION_IMAGES = 1000


def training_seed(seed: int, step: int) -> int:
    """The data seed of one training step: distinct per (seed, step), below EVALUATION_SEED."""
    return seed * 1_000_003 + step


def class_index(texts: list[str]) -> torch.Tensor:
    """Each image caption's position in ``captions()``: the class the models must pick."""
    order = {text: index for index, text in enumerate(captions())}
    return torch.tensor([order[text] for text in texts])


def caption_variants(rng: np.random.Generator, share_with_motion: float = 0.5) -> list[str]:
    """The twenty captions, in order, some of them with a random "moving <direction>".

    Prompts of video studies carry the motion; a still frame cannot show it. Training the
    text towers on both forms teaches them that the motion words do not change which shape
    a caption names, so a video prompt scores its frames as its shape and colour.
    """
    texts = []
    for colour in COLOURS:
        for shape in SHAPES:
            text = f"a {colour} {shape}"
            if rng.uniform() < share_with_motion:
                text += f" moving {DIRECTIONS[int(rng.integers(len(DIRECTIONS)))]}"
            texts.append(text)
    return texts


def contrastive_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    labels: torch.Tensor,
    logit_scale: torch.Tensor,
) -> torch.Tensor:
    """CLIP's symmetric loss when the texts are the classes and a batch repeats them.

    Images to texts: cross-entropy over all captions. Texts to images: each caption present
    in the batch against all images, with every image of that caption a positive (plain
    InfoNCE would count those other positives as negatives).
    """
    image_features = F.normalize(image_features, dim=-1)
    text_features = F.normalize(text_features, dim=-1)
    logits = logit_scale * image_features @ text_features.T
    image_to_text = F.cross_entropy(logits, labels)
    positives = F.one_hot(labels, num_classes=text_features.shape[0]).T.float()
    present = positives.sum(dim=1) > 0
    log_probabilities = logits.T.log_softmax(dim=1)
    per_text = -(log_probabilities * positives).sum(dim=1) / positives.sum(dim=1).clamp(min=1)
    text_to_image = per_text[present].mean()
    return (image_to_text + text_to_image) / 2


@torch.no_grad()
def zero_shot_accuracy(image_features: torch.Tensor, text_features: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of images whose most similar caption is their own."""
    scores = F.normalize(image_features, dim=-1) @ F.normalize(text_features, dim=-1).T
    return float((scores.argmax(dim=1) == labels).float().mean())


def evaluation_images(count: int = EVALUATION_IMAGES) -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out images and their class indices (the same set for every stage and run)."""
    images, texts, _ = sample_images(count, seed=EVALUATION_SEED)
    return images, class_index(texts)


def learning_rate(step: int, steps: int, peak: float, warmup_share: float = 0.05) -> float:
    """Linear warm-up, then a cosine down to a tenth of the peak."""
    warmup = max(1, int(steps * warmup_share))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


class StepProgress:
    """Prints "stage: step i/n, loss, elapsed, ETA" at most every ``interval`` seconds."""

    def __init__(self, stage: str, steps: int, progress: Progress, interval: float = 10.0):
        self.stage = stage
        self.steps = steps
        self.progress = progress
        self.interval = interval
        self.start = time.perf_counter()
        self._last_report = self.start

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def update(self, step: int, loss: float) -> None:
        """Report after finishing ``step`` (0-based) with its ``loss``."""
        now = time.perf_counter()
        done = step + 1
        if done < self.steps and now - self._last_report < self.interval:
            return
        self._last_report = now
        elapsed = now - self.start
        remaining = elapsed / done * (self.steps - done)
        self.progress(
            f"{self.stage}: step {done}/{self.steps}  loss {loss:.4f}  "
            f"elapsed {elapsed:.0f}s  ETA {remaining:.0f}s"
        )


def check_steps(steps: int | None, default: int) -> int:
    if steps is None:
        return default
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1 (or None for {default}), got {steps!r}")
    return steps


__all__ = [
    "EVALUATION_SEED",
    "Progress",
    "StepProgress",
    "caption_variants",
    "check_steps",
    "class_index",
    "contrastive_loss",
    "evaluation_images",
    "learning_rate",
    "training_seed",
    "zero_shot_accuracy",
]
