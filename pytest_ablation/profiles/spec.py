"""Model specs and profiles: what to load for each role, validated without touching a model."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pytest_ablation.profiles.settings import ProfileError, StudySettings

DTYPES = ("float32", "float16", "bfloat16")

SD_COMPONENTS = ("tokenizer", "text_encoder", "unet", "vae", "scheduler")
SVD_COMPONENTS = ("image_encoder", "feature_extractor", "unet", "vae", "scheduler")

_ROLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_CALLABLE = re.compile(rf"^{_DOTTED}:{_DOTTED}$")

Checker = Callable[[str, Any], Any]


def _fail(where: str, value: Any, allowed: str) -> ProfileError:
    return ProfileError(f"{where}: got {value!r}; expected {allowed}")


def _seed(where: str, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise _fail(where, value, "an integer >= 0")


def _positive_int(where: str, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise _fail(where, value, "an integer >= 1")


def _dtype(where: str, value: Any) -> Any:
    if value in DTYPES:
        return value
    raise _fail(where, value, f"one of {', '.join(DTYPES)}")


def _text(where: str, value: Any) -> Any:
    if isinstance(value, str) and value.strip():
        return value
    raise _fail(where, value, "a non-empty string")


def _flag(where: str, value: Any) -> Any:
    if isinstance(value, bool):
        return value
    raise _fail(where, value, "true or false")


def _class_name(where: str, value: Any) -> Any:
    # The class itself is looked up in diffusers at load time, keeping this module torch-free.
    if isinstance(value, str) and value.isidentifier():
        return value
    raise _fail(where, value, "the name of a diffusers scheduler class, e.g. 'DDIMScheduler'")


def _subfolders(components: tuple[str, ...]) -> Checker:
    def check(where: str, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _fail(where, value, f"a table mapping some of {', '.join(components)} to folders")
        for key, folder in value.items():
            if key not in components:
                raise ProfileError(
                    f"{where}.{key}: unknown component; the components are: {', '.join(components)}"
                )
            _text(f"{where}.{key}", folder)
        return dict(value)

    return check


def _table(where: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise _fail(where, value, "a table")


@dataclass(frozen=True)
class KindRule:
    description: str
    source: str  # "none", "optional" or "required"
    options: Mapping[str, Checker] | None  # None: any JSON-able options are passed through
    required: tuple[str, ...] = ()


_PRETRAINED_COMMON: dict[str, Checker] = {
    "revision": _text,
    "variant": _text,
    "dtype": _dtype,
    "local_files_only": _flag,
    "scheduler": _class_name,
    "scheduler_config": _table,
}

KINDS: Mapping[str, KindRule] = MappingProxyType(
    {
        "tiny-stable-diffusion": KindRule(
            "Stable Diffusion's structure at toy size, built in-process from a fixed seed",
            "none",
            {"seed": _seed, "dtype": _dtype},
        ),
        "tiny-stable-video-diffusion": KindRule(
            "Stable Video Diffusion's structure at toy size, built in-process from a fixed seed",
            "none",
            {"seed": _seed, "dtype": _dtype, "num_frames": _positive_int},
        ),
        "tiny-open-clip": KindRule(
            "the metrics' toy open_clip judge 'pytest-ablation-tiny', seeded random weights",
            "none",
            {"seed": _seed},
        ),
        "stable-diffusion": KindRule(
            "Stable Diffusion 1.x components from a hub id or a local folder (diffusers layout)",
            "required",
            {**_PRETRAINED_COMMON, "subfolders": _subfolders(SD_COMPONENTS)},
        ),
        "stable-video-diffusion": KindRule(
            "Stable Video Diffusion components from a hub id or a local folder (diffusers layout)",
            "required",
            {**_PRETRAINED_COMMON, "subfolders": _subfolders(SVD_COMPONENTS)},
        ),
        "open-clip": KindRule(
            "an open_clip model: options.name is the architecture, source the pretrained tag "
            "or checkpoint file (none: random weights)",
            "optional",
            {"name": _text, "seed": _seed},
            required=("name",),
        ),
        "exsvd": KindRule(
            "Stable Video Diffusion img2vid-xt components from a hub id or a local folder, "
            "with the UNet extended and loaded from an ExVideo ExSVD file (options.exsvd: a "
            "hub repository, a folder or a .safetensors file; default ECNU-CILab/ExVideo-SVD-128f-v1)",
            "required",
            {
                **_PRETRAINED_COMMON,
                "subfolders": _subfolders(SVD_COMPONENTS),
                "exsvd": _text,
                "exsvd_file": _text,
                "exsvd_revision": _text,
            },
        ),
        "callable": KindRule(
            "source 'package.module:function', called as function(device=..., **options)",
            "required",
            None,
        ),
    }
)


def _plain(where: str, value: Any) -> Any:
    """A JSON-able copy of an option value (profiles go into report.json and cache keys)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(where, value, "a finite number")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(f"{where}[{i}]", item) for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _fail(where, key, "string keys")
            out[key] = _plain(f"{where}.{key}", item)
        return out
    raise _fail(where, value, "a string, number, boolean, list or table")


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again, e.g. to pass options on as keyword arguments."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(item) for item in value]
    return value


@dataclass(frozen=True)
class ModelSpec:
    """One role of a profile: which kind of model, from where, with which options."""

    role: str
    kind: str
    source: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or not _ROLE.match(self.role):
            raise _fail("models", self.role, "a role name of letters, digits, '_' and '-'")
        where = f"models.{self.role}"
        if self.kind not in KINDS:
            raise ProfileError(
                f"{where}.kind: got {self.kind!r}; the kinds are: {', '.join(KINDS)}"
            )
        rule = KINDS[self.kind]
        if self.source is not None and not (isinstance(self.source, str) and self.source.strip()):
            raise _fail(f"{where}.source", self.source, "a non-empty string")
        if rule.source == "none" and self.source is not None:
            raise ProfileError(
                f"{where}.source: kind {self.kind!r} is built in-process and takes no source "
                f"(got {self.source!r})"
            )
        if rule.source == "required" and self.source is None:
            raise ProfileError(f"{where}.source: missing; kind {self.kind!r} needs one")
        if self.kind == "callable" and not _CALLABLE.match(self.source):
            raise _fail(f"{where}.source", self.source, "'package.module:function'")
        if not isinstance(self.options, Mapping):
            raise _fail(f"{where}.options", self.options, "a table")
        options = _plain(f"{where}", dict(self.options))
        if rule.options is not None:
            for key, value in options.items():
                if key not in rule.options:
                    allowed = ", ".join(rule.options) or "none"
                    raise ProfileError(
                        f"{where}.{key}: unknown option for kind {self.kind!r}; "
                        f"its options are: {allowed}"
                    )
                options[key] = rule.options[key](f"{where}.{key}", value)
            for key in rule.required:
                if key not in options:
                    raise ProfileError(f"{where}.{key}: missing; kind {self.kind!r} needs it")
        object.__setattr__(self, "options", _freeze(options))

    def __hash__(self) -> int:
        # The options mapping is read-only but not hashable; its JSON form is canonical.
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "kind": self.kind,
            "source": self.source,
            "options": thaw(self.options),
        }


@dataclass(frozen=True)
class Profile:
    """A named set of study settings and the model behind each role."""

    name: str
    description: str
    settings: StudySettings
    models: Mapping[str, ModelSpec]
    path: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise _fail("profile.name", self.name, "a non-empty string")
        if not isinstance(self.description, str):
            raise _fail("profile.description", self.description, "a string")
        if not isinstance(self.settings, StudySettings):
            raise _fail("settings", self.settings, "a StudySettings")
        if not isinstance(self.models, Mapping) or not self.models:
            raise ProfileError("models: a profile needs at least one [models.<role>] table")
        for role, spec in self.models.items():
            if not isinstance(spec, ModelSpec):
                raise _fail(f"models.{role}", spec, "a ModelSpec")
            if spec.role != role:
                raise ProfileError(f"models.{role}: holds the spec of role {spec.role!r}")
        object.__setattr__(self, "models", MappingProxyType(dict(self.models)))
        if self.path is not None:
            object.__setattr__(self, "path", str(self.path))

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(self.models)

    def model(self, role: str) -> ModelSpec:
        try:
            return self.models[role]
        except KeyError:
            raise ProfileError(
                f"profile {self.name!r} has no model role {role!r}; "
                f"its roles are: {', '.join(self.models)}"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "path": self.path,
            "settings": self.settings.to_dict(),
            "models": {role: spec.to_dict() for role, spec in self.models.items()},
        }
