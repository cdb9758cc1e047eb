"""Settings shared by the package's tests, and the process-wide state each test gets back.

A test may change state that outlives it in this process: the plugin's metric registry (an
in-process pytester run registers its project's metrics), torch's settings (threads,
deterministic mode, cuDNN and TF32 flags, which the plugin sets on a GPU), and the
environment variables the plugin sets with ``setdefault``. Each test gets them back as they
were before it (``_process_state_restored``), so its outcome does not depend on which tests
ran before it in the same process.
"""

import os

import pytest

# Imported here, outside any in-process pytester run: such runs drop the modules they
# imported when they end, and torch refuses to be imported twice in one process. So do the
# operator libraries torch._dynamo registers on import (diffusers imports it): a second
# pytester run that loads a model would otherwise fail with "Only a single TORCH_LIBRARY".
import torch
import torch._dynamo  # noqa: F401

from pytest_ablation.harness.options import CACHE_ENV


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # The models under test are tiny: threads buy nothing, and on a busy two-core machine two
    # OpenMP threads spend most of their time waiting on each other (100x slowdowns seen).
    # It is also the plugin's own policy on the CPU (see pytest_ablation.run.devices).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _torch_settings() -> dict:
    return {
        "deterministic": (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
        ),
        "cudnn.deterministic": torch.backends.cudnn.deterministic,
        "cudnn.benchmark": torch.backends.cudnn.benchmark,
        "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "default_dtype": torch.get_default_dtype(),
    }


def _restore_torch_settings(settings: dict) -> None:
    enabled, warn_only = settings["deterministic"]
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    torch.backends.cudnn.deterministic = settings["cudnn.deterministic"]
    torch.backends.cudnn.benchmark = settings["cudnn.benchmark"]
    torch.backends.cudnn.allow_tf32 = settings["cudnn.allow_tf32"]
    torch.backends.cuda.matmul.allow_tf32 = settings["matmul.allow_tf32"]
    torch.set_default_dtype(settings["default_dtype"])


# Set by the plugin with os.environ.setdefault, so never undone by the plugin itself.
_PLUGIN_ENVIRONMENT = ("CUBLAS_WORKSPACE_CONFIG",)


@pytest.fixture(autouse=True)
def _process_state_restored():
    # (Metrics are no process-wide state: each run owns its MetricRegistry.)
    settings = _torch_settings()
    environment = {name: os.environ.get(name) for name in _PLUGIN_ENVIRONMENT}
    yield
    if _torch_settings() != settings:
        _restore_torch_settings(settings)
    for name, value in environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _without_randomly(monkeypatch) -> None:
    addopts = os.environ.get("PYTEST_ADDOPTS", "")
    if "no:randomly" not in addopts:
        monkeypatch.setenv("PYTEST_ADDOPTS", f"{addopts} -p no:randomly".strip())


# The suite's own order is random (pytest-randomly). The runs a test makes of a project keep
# their files' order: their assertions read which case ran first, which was interrupted,
# which cache entry was computed and which reused.
@pytest.fixture(autouse=True)
def _subprocess_runs_in_file_order(monkeypatch):
    _without_randomly(monkeypatch)


# A run's default cache is the user's, shared by every project (harness/options.py): each
# test gets its own, so that no test reads what another (or the user) computed.
@pytest.fixture(autouse=True)
def _own_cache(monkeypatch, tmp_path_factory):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("ablation-cache")))


@pytest.fixture
def pytester(pytester, monkeypatch):
    # pytester clears PYTEST_ADDOPTS when it starts: set again for its runs.
    _without_randomly(monkeypatch)
    # A project's runs share the project's own cache folder, where the tests look for it.
    monkeypatch.setenv(CACHE_ENV, str(pytester.path / ".ablation-cache"))
    return pytester
