"""The toy world's pytest plugin (pytest11 entry point ``ablation-toyworld``): registers the
parser metrics (``metrics.py``) in every process, before collection, so a study can name
them. The plugin core imports none of this: the toy world registers itself."""

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_ablation_add_metrics(register):
    # tryfirst, as the built-ins are registered: a conftest's implementation (no mark) runs
    # after this one, so a conftest registering one of these names replaces it.
    from pytest_ablation.toyworld.metrics import register_toy_metrics

    register_toy_metrics(register)
