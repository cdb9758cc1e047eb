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


def pytest_ablation_check_prompts(profile, prompts):
    # Only a profile whose text-to-image role is the toy world's own model: it was trained on
    # "a <colour> <shape>" captions and draws nothing else.
    from pathlib import Path

    from pytest_ablation.toyworld import WEIGHTS_DIR
    from pytest_ablation.toyworld.data import unrenderable

    spec = profile.models.get("sd")
    if spec is None or spec.source is None:
        return None
    try:
        Path(spec.source).resolve().relative_to(WEIGHTS_DIR.resolve())
    except ValueError:
        return None
    return unrenderable(prompts)
