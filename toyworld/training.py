"""What the toy world's training stages share: seeds, progress lines, the contrastive loss
and its training loop, writing a model's folder.

The two CLIPs (the judge and the generators' own) learn the same thing: to match an image of
a shape with its caption among all twenty captions. Each step draws fresh images, so there is
no fixed training set to overfit; a held-out evaluation set is drawn from its own seed.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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
            f"{self.stage}: step {done}/{self.steps}  loss {loss:.4f}  elapsed {elapsed:.0f}s  ETA {remaining:.0f}s"
        )


def fit_contrastive(
    model: torch.nn.Module,
    step_loss: Callable[[int], torch.Tensor],
    *,
    stage: str,
    steps: int,
    peak_learning_rate: float,
    progress: Progress | None = None,
) -> list[float]:
    """Train a CLIP-like ``model`` in place for ``steps`` steps; returns each step's loss.

    ``step_loss(step)`` draws the step's batch and returns its loss. Adam without weight
    decay (the token embeddings of words no caption uses get no gradient and so stay as
    initialised) on the shared schedule, and CLIP's cap on the learned temperature, which
    keeps the logits from running away.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=peak_learning_rate)
    reporter = StepProgress(stage, steps, progress) if progress else None
    losses = []
    model.train()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps, peak_learning_rate)
        loss = step_loss(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(loss.item())
        if reporter:
            reporter.update(step, losses[-1])
    return losses


def contrastive_figures(losses: list[float], start: float, quality: Callable[[], dict[str, float]]) -> dict[str, float]:
    """A contrastive stage's figures: its final loss (mean of the last ten steps), the
    seconds since ``start`` (``time.perf_counter()``; measuring quality not counted) and
    the figures of ``quality()``."""
    seconds = time.perf_counter() - start
    return {"loss": float(np.mean(losses[-10:])), "seconds": seconds, **quality()}


def save_folder_atomic(save: Callable[[Path], None], target: Path) -> Path:
    """Run ``save(folder)`` into a temporary folder beside ``target``, then swap it in.

    A reader sees the old folder or the new one, never a half-written one; an interrupted
    save leaves the old folder in place.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        save(staging)
        # mkdtemp makes the folder private; shipped weights are for everyone to read.
        staging.chmod(0o755)
        for path in staging.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, retired / target.name)
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def folder_megabytes(folder: Path) -> float:
    """The size of the files under ``folder``, in MiB."""
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file()) / 2**20


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
    "contrastive_figures",
    "contrastive_loss",
    "evaluation_images",
    "fit_contrastive",
    "folder_megabytes",
    "learning_rate",
    "save_folder_atomic",
    "training_seed",
    "zero_shot_accuracy",
]
