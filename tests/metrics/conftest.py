"""Fixtures of the metric tests: the tiny CLIP model and synthetic videos."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from pytest_ablation.metrics import TINY_MODEL, ClipModel


@pytest.fixture(scope="session")
def tiny_clip() -> ClipModel:
    return ClipModel.from_open_clip(TINY_MODEL, seed=0)


# Every video here sits on uint8 levels, as if decoded from a file, so that the reference
# computations in the tests (PIL, OpenCV, numpy on uint8) see exactly the same pixels.
def _levels(x: torch.Tensor) -> torch.Tensor:
    return (x.float() * 255).round() / 255


def _image(height: int, width: int, seed: int) -> torch.Tensor:
    """A smooth random colour image in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(2, height // 8), max(2, width // 8), generator=g)
    image = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear")
    return _levels(image[0])


def still(frames: int = 4, height: int = 64, width: int = 64, seed: int = 0) -> torch.Tensor:
    return _image(height, width, seed).expand(frames, 3, height, width).clone()


def noise(frames: int = 4, height: int = 64, width: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return _levels(torch.rand(frames, 3, height, width, generator=g))


def grating(frames: int = 4, size: int = 64, speed: float = 1.0, seed: int = 0) -> torch.Tensor:
    """A periodic texture translating right by ``speed`` px per frame.

    A sum of sinusoids whose frequencies are whole cycles per image, so the motion is an
    exact translation with wrap-around and no edge effect; the shortest wavelength (size/5)
    stays above twice the speeds tested, so the motion is unambiguous.
    """
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(
        torch.arange(size, dtype=torch.float64),
        torch.arange(size, dtype=torch.float64),
        indexing="ij",
    )
    fx = torch.randint(1, 6, (6,), generator=g)
    fy = torch.randint(0, 6, (6,), generator=g)
    phase = torch.rand(6, generator=g, dtype=torch.float64) * 2 * math.pi
    out = torch.empty(frames, 3, size, size, dtype=torch.float64)
    for t in range(frames):
        pattern = (
            sum(torch.sin(2 * math.pi * (fx[k] * (x - speed * t) + fy[k] * y) / size + phase[k]) for k in range(6)) / 6
        )
        for c in range(3):
            out[t, c] = 0.5 + 0.4 * (1 - 0.2 * c) * pattern
    return _levels(out)


def fade(frames: int = 5, height: int = 64, width: int = 64, seed: int = 0) -> torch.Tensor:
    a, b = _image(height, width, seed), _image(height, width, seed + 1)
    w = torch.linspace(0, 1, frames).view(frames, 1, 1, 1)
    return _levels((1 - w) * a + w * b)


@pytest.fixture(scope="session")
def videos() -> SimpleNamespace:
    return SimpleNamespace(still=still, noise=noise, grating=grating, fade=fade, image=_image)
