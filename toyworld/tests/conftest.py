"""Settings of the training code's tests (as ``tests/conftest.py`` sets them for the package's)."""

import pytest

# Imported before any in-process pytester run, which would drop it: torch cannot be
# imported twice in one process.
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # Tiny models on a busy two-core machine: one thread, as the plugin uses on the CPU.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
