"""The study settings of a profile: prompts, seeds and the shape of every generated video."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_ablation.suggest import did_you_mean


class ProfileError(ValueError):
    """A profile, a setting or a model spec is unusable; the message names the culprit."""


def _is_int(value: Any) -> bool:
    # bool is an int subclass, but `frames = true` in a TOML file is a mistake, not 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _int_at_least(minimum: int) -> tuple[Callable[[Any], Any], str]:
    def check(value: Any) -> Any:
        if _is_int(value) and value >= minimum:
            return value
        return None

    return check, f"an integer >= {minimum}"


def _size(value: Any) -> Any:
    # Stable Diffusion's VAE downsamples by 8; other sizes fail deep inside the UNet.
    if _is_int(value) and value > 0 and value % 8 == 0:
        return value
    return None


def _guidance(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = float(value)
        if math.isfinite(value) and value >= 0:
            return value
    return None


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to about ``limit`` characters: a message names a bad entry, not
    a whole list of hundreds."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 4]}...{text[-1]}"


def _prompts(value: Any) -> Any:
    # A lone string would otherwise be taken as a sequence of one-letter prompts.
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        return None
    if not value:
        return None
    first: dict[str, int] = {}
    for index, prompt in enumerate(value):
        if not isinstance(prompt, str) or not prompt.strip():
            raise ProfileError(
                f"settings.prompts[{index}]: got {shown(prompt)}; expected a non-empty string "
                f"(one of the {len(value)} prompts)"
            )
        if prompt in first:
            # One prompt twice is one sample counted twice: the same seeds give the same video.
            raise ProfileError(
                f"settings.prompts[{index}]: {shown(prompt)} repeats settings.prompts"
                f"[{first[prompt]}]; each prompt is one sample, list it once"
            )
        first[prompt] = index
    return tuple(value)


def _batch_size(value: Any) -> Any:
    if value == "auto" or (_is_int(value) and value >= 1):
        return value
    return None


def _setting(check: Callable[[Any], Any], allowed: str, default: Any = dataclasses.MISSING) -> Any:
    """A field of StudySettings with its check: ``check(value)`` is the normalised value, or
    None when ``value`` is not ``allowed``."""
    return dataclasses.field(default=default, metadata={"check": check, "allowed": allowed})


# Settings a profile may leave out, and what they then are. batch_size changes how fast
# videos are made, never which: a sample's video does not depend on its batch.
OPTIONAL_SETTINGS: dict[str, Any] = {"batch_size": "auto"}

# On a GPU, "auto" batches a variant's samples until one UNet call holds about this many
# images (frames x guidance branches x videos): enough to fill a large GPU at 512x512 without
# outgrowing a 24 GB one.
AUTO_BATCH_IMAGES = 32


def resolve_batch_size(value: Any, device: str, frames: int) -> int:
    """Samples per generator call: ``batch_size`` as set, or for ``"auto"`` 1 on the CPU
    (batching buys nothing there) and about ``AUTO_BATCH_IMAGES`` images per UNet call on a
    GPU."""
    if value != "auto":
        return int(value)
    if not device.startswith("cuda"):
        return 1
    return max(1, AUTO_BATCH_IMAGES // (2 * frames))


@dataclass(frozen=True)
class StudySettings:
    """What every study of a profile generates: each prompt x each seed index, one video each."""

    prompts: tuple[str, ...] = _setting(_prompts, "a non-empty list of non-empty strings")
    seeds: int = _setting(*_int_at_least(1))
    frames: int = _setting(*_int_at_least(1))
    steps: int = _setting(*_int_at_least(1))
    height: int = _setting(_size, "a positive integer multiple of 8")
    width: int = _setting(_size, "a positive integer multiple of 8")
    guidance_scale: float = _setting(_guidance, "a finite number >= 0")
    fps: int = _setting(*_int_at_least(1))
    batch_size: int | str = _setting(_batch_size, 'an integer >= 1 or "auto"', default=OPTIONAL_SETTINGS["batch_size"])

    def __post_init__(self) -> None:
        for name in SETTING_NAMES:
            object.__setattr__(self, name, check_setting(name, getattr(self, name)))

    def replace(self, **overrides: Any) -> StudySettings:
        _known(overrides)
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in SETTING_NAMES}
        data["prompts"] = list(self.prompts)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudySettings:
        """Settings from a mapping; a missing or unknown key is a ProfileError naming it."""
        _known(data)
        missing = [name for name in SETTING_NAMES if name not in data and name not in OPTIONAL_SETTINGS]
        if missing:
            raise ProfileError(
                f"settings.{missing[0]}: missing; every profile sets "
                + ", ".join(name for name in SETTING_NAMES if name not in OPTIONAL_SETTINGS)
            )
        return cls(**data)


_RULES: dict[str, tuple[Callable[[Any], Any], str]] = {
    f.name: (f.metadata["check"], f.metadata["allowed"]) for f in dataclasses.fields(StudySettings)
}
SETTING_NAMES: tuple[str, ...] = tuple(_RULES)


def _known(names: Any) -> None:
    for name in names:
        if name not in _RULES:
            raise ProfileError(
                f"settings.{name}: unknown setting; {did_you_mean(name, SETTING_NAMES)}the "
                f"settings are: {', '.join(SETTING_NAMES)}"
            )


def check_setting(name: str, value: Any) -> Any:
    """The normalised value of one setting, or ProfileError naming it and what is allowed."""
    _known([name])
    check, allowed = _RULES[name]
    normalised = check(value)
    if normalised is None:
        raise ProfileError(f"settings.{name}: got {shown(value)}; expected {allowed}")
    return normalised
