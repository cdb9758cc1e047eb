"""Fixtures of the ZS² tests: the tiny Stable Diffusion and small attention layers."""

from __future__ import annotations

import pytest
import torch

from pytest_ablation.models.tiny import build_tiny_stable_diffusion


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # These models are far too small to gain from threads, and on a loaded two-core machine
    # two OpenMP threads spend most of their time waiting on each other.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_sd():
    return build_tiny_stable_diffusion(seed=0)
