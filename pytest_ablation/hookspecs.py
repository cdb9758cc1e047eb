"""Hooks that conftest files and plugins can implement to extend pytest-ablation."""

import pytest


@pytest.hookspec(firstresult=True)
def pytest_ablation_visible_gpus(config):
    """Return the physical ids (strings) of the GPUs this machine offers, in CUDA order.

    The default asks torch and honours ``CUDA_VISIBLE_DEVICES``. Implement it to describe
    GPUs torch cannot see from the controller, or to simulate a GPU list in tests.
    """


@pytest.hookspec
def pytest_ablation_add_metrics(register):
    """Register extra metrics: call ``register(MetricSpec(...))`` for each.

    Called in every process (controller and workers) before collection, so the metrics are
    known when the ``ablation`` markers are checked.
    """


@pytest.hookspec
def pytest_ablation_report(config, report):
    """Inspect or amend the report (a JSON-able dict) before it is written and gated."""
