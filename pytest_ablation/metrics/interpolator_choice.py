"""Which frame interpolator ``motion_smoothness`` uses in a run: a profile's
``[metrics.motion_smoothness] interpolator = ...``.

The value is a built-in name (``BUILTINS``) or ``"package.module:factory"``, a callable
that takes no argument and returns an interpolator (see interpolators.py). The profile is
checked when it loads, before any model: the module is imported and the factory looked up,
but the factory is only called when a score is computed (it may load a model, such as AMT).

This module imports neither torch nor OpenCV, since profiles load at pytest's configure time.
"""

from __future__ import annotations

import importlib
import re
import threading
from typing import Any

SETTING = "metrics.motion_smoothness.interpolator"
DEFAULT = "flow-midwarp"
# name -> (module, factory) of the interpolators that ship with the package.
BUILTINS = {
    "flow-midwarp": ("pytest_ablation.metrics.interpolators", "FlowMidpointInterpolator"),
    "flow-midwarp-farneback": ("pytest_ablation.metrics.interpolators", "farneback_midpoint"),
    "linear-blend": ("pytest_ablation.metrics.interpolators", "LinearInterpolator"),
}
_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def check(value: Any, where: str = SETTING) -> str:
    """``value`` if it names an importable factory or a built-in, else ValueError naming
    ``where`` and what is allowed."""
    allowed = f"a built-in name ({', '.join(BUILTINS)}) or 'package.module:factory'"
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: expected {allowed}, got {value!r}")
    if value in BUILTINS:
        return value
    if not _PATH.match(value):
        raise ValueError(f"{where}: {value!r} is not {allowed}")
    _factory(value, where)
    return value


def _factory(value: str, where: str) -> Any:
    if value in BUILTINS:
        module_name, attribute = BUILTINS[value]
    else:
        module_name, attribute = value.split(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any failure to import is the setting's fault
        raise ValueError(
            f"{where}: cannot import module {module_name!r} of {value!r}: {type(exc).__name__}: {exc}"
        ) from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"{where}: module {module_name!r} has no {attribute!r} ({value!r})")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(
            f"{where}: {value!r} is not callable; it must be a factory taking no argument and returning an interpolator"
        )
    return target


_BUILT: dict[str, Any] = {}
_LOCK = threading.Lock()


def build(value: str, where: str = SETTING) -> Any:
    """The interpolator ``value`` names, made once per process (a factory may load a model)."""
    with _LOCK:
        if value not in _BUILT:
            interpolator = _factory(value, where)()
            if not callable(interpolator):
                raise ValueError(
                    f"{where}: {value!r} returned {type(interpolator).__name__}, not an "
                    "interpolator (a callable (frames_a, frames_b) -> midpoints)"
                )
            _BUILT[value] = interpolator
        return _BUILT[value]


class LazyInterpolator:
    """The interpolator of a setting, built on first use, so that a run whose
    motion_smoothness scores are all cached never calls the factory."""

    def __init__(self, value: str) -> None:
        self.setting = value

    @property
    def name(self) -> str:
        from pytest_ablation.metrics.interpolators import interpolator_name

        return interpolator_name(build(self.setting))

    def __call__(self, frames_a, frames_b):
        return build(self.setting)(frames_a, frames_b)

    def __repr__(self) -> str:
        return f"LazyInterpolator({self.setting!r})"
