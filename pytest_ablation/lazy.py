"""Package exports that import their module on first access.

Importing ``pytest_ablation.metrics`` or a method package must stay cheap (the plugin loads
at every ``pytest`` start, ``--help`` included), while their public names live in modules
that import torch, open_clip or OpenCV.
"""

from __future__ import annotations

import importlib
from typing import Any
from collections.abc import Callable, Mapping


def lazy_exports(
    package: str, modules: Mapping[str, tuple[str, ...]]
) -> tuple[Callable[[str], Any], Callable[[], list], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``, from each submodule
    (relative name) and the public names it holds."""
    namespace = importlib.import_module(package).__dict__
    exports = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__, sorted(exports)
