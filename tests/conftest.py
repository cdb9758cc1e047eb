"""Settings shared by the package's tests."""

import pytest

# Imported here, outside any in-process pytester run: such runs drop the modules they
# imported when they end, and torch refuses to be imported twice in one process. So do the
# operator libraries torch._dynamo registers on import (diffusers imports it): a second
# pytester run that loads a model would otherwise fail with "Only a single TORCH_LIBRARY".
import torch
import torch._dynamo  # noqa: F401


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # The models under test are tiny: threads buy nothing, and on a busy two-core machine two
    # OpenMP threads spend most of their time waiting on each other (100x slowdowns seen).
    # It is also the plugin's own policy on the CPU (see pytest_ablation.devices).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _without_randomly(monkeypatch) -> None:
    import os

    addopts = os.environ.get("PYTEST_ADDOPTS", "")
    if "no:randomly" not in addopts:
        monkeypatch.setenv("PYTEST_ADDOPTS", f"{addopts} -p no:randomly".strip())


# The suite's own order is random (pytest-randomly). The runs a test makes of a project keep
# their files' order: their assertions read which case ran first, which was interrupted,
# which cache entry was computed and which reused.
@pytest.fixture(autouse=True)
def _subprocess_runs_in_file_order(monkeypatch):
    _without_randomly(monkeypatch)


@pytest.fixture
def pytester(pytester, monkeypatch):
    # pytester clears PYTEST_ADDOPTS when it starts: set again for its runs.
    _without_randomly(monkeypatch)
    return pytester
