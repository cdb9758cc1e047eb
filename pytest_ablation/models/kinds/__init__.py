"""The package's own model kinds, one module each; each module's ``KIND`` is listed under
the ``pytest_ablation.model_kinds`` entry point group (see `pytest_ablation.profiles.kinds`)."""
