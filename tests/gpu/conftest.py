"""Tests marked `gpu` need a CUDA GPU; without one they are skipped, saying why."""

import pytest


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    reason = (
        f"needs a CUDA GPU: torch {torch.__version__} (CUDA build {torch.version.cuda or 'none'}) "
        "sees none; run scripts/gpu-check on a GPU machine"
    )
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(pytest.mark.skip(reason=reason))
