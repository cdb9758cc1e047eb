"""Profiles: the study settings and the model behind each role, read from TOML.

This package imports neither torch nor diffusers: the plugin validates its options with it at
start-up, and ``pytest --help`` must stay fast.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from pytest_ablation.profiles.settings import SETTING_NAMES, ProfileError, StudySettings
from pytest_ablation.profiles.checks import DTYPES
from pytest_ablation.profiles.kinds import ModelKind, model_kinds, register_model_kind
from pytest_ablation.profiles.spec import ModelSpec, Profile
from pytest_ablation.profiles.toml import LocatedError, read_profile
from pytest_ablation.suggest import did_you_mean

__all__ = [
    "DEFAULT_PROFILE",
    "DTYPES",
    "SETTING_NAMES",
    "ModelKind",
    "ModelSpec",
    "Profile",
    "ProfileError",
    "StudySettings",
    "builtin_profiles",
    "load_profile",
    "looks_like_path",
    "model_kinds",
    "register_model_kind",
]

DEFAULT_PROFILE = "tiny"


def _builtin_folder() -> Path:
    return Path(str(resources.files(__name__)))


def builtin_profiles() -> list[str]:
    """The names of the profiles shipped with the package, sorted."""
    return sorted(p.stem for p in _builtin_folder().glob("*.toml"))


def looks_like_path(value: str) -> bool:
    """Whether a profile value is meant as a file rather than a built-in name."""
    return value.endswith(".toml") or any(sep in value for sep in (os.sep, "/", "\\")) or value.startswith("~")


def _load(value: str | os.PathLike[str], base_dir: Path | None, stack: tuple[Path, ...]) -> Profile:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(
            f"got {value!r}; expected a built-in profile name "
            f"({', '.join(builtin_profiles())}) or a path to a .toml file"
        )
    if value in builtin_profiles():
        return read_profile(_builtin_folder() / f"{value}.toml", _extends, stack)
    if looks_like_path(value) or Path(value).is_file():
        path = Path(os.path.expanduser(value))
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        if not path.is_file():
            raise ProfileError(
                f"the profile file {str(path)!r} does not exist (the built-in "
                f"profiles are {', '.join(builtin_profiles())})"
            )
        return read_profile(path, _extends, stack)
    raise ProfileError(
        f"unknown profile {value!r}; {did_you_mean(value, builtin_profiles())}the built-in profiles are "
        f"{', '.join(builtin_profiles())}, or give a path to a .toml file"
    )


def _extends(ref: str, base_dir: Path, stack: tuple[Path, ...]) -> Profile:
    try:
        return _load(ref, base_dir, stack)
    except LocatedError:
        raise
    except ProfileError as exc:
        raise ProfileError(f"profile.extends: {exc}") from None


def load_profile(name_or_path: str | os.PathLike[str]) -> Profile:
    """A built-in profile by name, or the profile in a TOML file.

    Anything else, and any malformed file or field, raises ProfileError naming the value,
    the file and the field.
    """
    return _load(name_or_path, None, ())
