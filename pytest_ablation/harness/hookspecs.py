"""Hooks that conftest files and plugins can implement to extend pytest-ablation.

The plugin implements each one itself (``plugin.py``), so a run without extensions behaves
the same, and an extension's implementation adds to or overrides the default as each hook
says.
"""

import pytest


@pytest.hookspec(firstresult=True)
def pytest_ablation_visible_gpus(config):
    """Return the physical ids (strings) of the GPUs this machine offers, in CUDA order.

    The default asks torch and honours ``CUDA_VISIBLE_DEVICES``; it runs last, so any other
    implementation that returns a list wins. Implement it to describe GPUs torch cannot see
    from the controller, or to simulate a GPU list in tests.
    """


@pytest.hookspec
def pytest_ablation_add_metrics(register):
    """Register extra metrics: call ``register(MetricSpec(...))`` for each.

    ``register`` adds to this run's own metric registry (nothing is registered process-wide).
    Called in every process (controller and workers) before collection, so the metrics are
    known when the ``ablation`` markers are checked. The default registers the built-in
    metrics and runs first, so a metric registered under a built-in name replaces it.
    Installed packages' metrics (the ``pytest_ablation.metrics`` entry points) come after,
    under the names left free.
    """


@pytest.hookspec
def pytest_ablation_check_prompts(profile, prompts):
    """Return why some of ``prompts`` cannot be rendered by ``profile``'s models (a list of
    one-line problems; empty or None when all can).

    Called before any model loads, with the prompts of the selected studies that use the
    profile's own prompt list. Every implementation is asked and their problems are shown
    together; the toy world's refuses a prompt its models were never trained to draw.
    """


@pytest.hookspec(firstresult=True)
def pytest_ablation_model_roles(fixturename):
    """Return the profile roles a generator fixture loads (e.g. ``("sd",)``), or None when
    the fixture is not yours.

    Asked before any model loads, for each fixture of the selected studies that draws on
    ``ablation_models``: the weights of those roles (and the judge's, when a metric needs it)
    must be on this machine, or the run stops at start-up naming each missing one. A fixture
    nobody answers for is not checked; its models load (or fail) when it runs.
    """


def pytest_ablation_report(config, report):
    """Inspect or amend the report (a JSON-able dict) before it is written.

    Called on the controller once the report holds the gate's verdict (``report["gate"]``,
    with ``--ablation-gate``); report.json, report.md and report.html are then written as the
    implementations left it. The default changes nothing.
    """
