"""Checks of a model option's value: ``check(where, value)`` returns the value to keep or
raises ProfileError naming ``where``, the value and what is allowed.

Model kinds declare their options with these (``ModelKind.options``); none of them loads a
model or imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pytest_ablation.profiles.settings import ProfileError
from pytest_ablation.suggest import did_you_mean

Checker = Callable[[str, Any], Any]

DTYPES = ("float32", "float16", "bfloat16")


def fail(where: str, value: Any, allowed: str) -> ProfileError:
    return ProfileError(f"{where}: got {value!r}; expected {allowed}")


def seed(where: str, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise fail(where, value, "an integer >= 0")


def positive_int(where: str, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise fail(where, value, "an integer >= 1")


def dtype(where: str, value: Any) -> Any:
    if value in DTYPES:
        return value
    raise fail(where, value, f"one of {', '.join(DTYPES)}")


def text(where: str, value: Any) -> Any:
    if isinstance(value, str) and value.strip():
        return value
    raise fail(where, value, "a non-empty string")


def flag(where: str, value: Any) -> Any:
    if isinstance(value, bool):
        return value
    raise fail(where, value, "true or false")


def class_name(where: str, value: Any) -> Any:
    # The class itself is looked up in diffusers at load time, keeping this module torch-free.
    if isinstance(value, str) and value.isidentifier():
        return value
    raise fail(where, value, "the name of a diffusers scheduler class, e.g. 'DDIMScheduler'")


def table(where: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise fail(where, value, "a table")


def subfolders(components: tuple[str, ...]) -> Checker:
    """A table mapping some of ``components`` to the folders they are read from."""

    def check(where: str, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise fail(where, value, f"a table mapping some of {', '.join(components)} to folders")
        for key, folder in value.items():
            if key not in components:
                raise ProfileError(
                    f"{where}.{key}: unknown component; {did_you_mean(key, components)}the "
                    f"components are: {', '.join(components)}"
                )
            text(f"{where}.{key}", folder)
        return dict(value)

    return check
