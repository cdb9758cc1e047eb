"""Fixtures of the ZS² tests: the tiny Stable Diffusion and small attention layers."""

from __future__ import annotations

import pytest

from pytest_ablation.models.tiny import build_tiny_stable_diffusion


@pytest.fixture(scope="session")
def tiny_sd():
    return build_tiny_stable_diffusion(seed=0)
