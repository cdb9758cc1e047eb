"""Profiles as TOML files: parsing, `extends`, and resolving local paths against the file."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_ablation.profiles.settings import ProfileError, StudySettings
from pytest_ablation.profiles.kinds import model_kind
from pytest_ablation.profiles.prompts import read_prompts
from pytest_ablation.profiles.spec import ModelSpec, Profile, thaw
from pytest_ablation.suggest import did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_TOP_LEVEL = ("profile", "settings", "models", "methods", "metrics")
_PROFILE_KEYS = ("name", "description", "extends")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


class LocatedError(ProfileError):
    """Already names its file; an including file must not prefix its own name to it."""


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ProfileError(f"{where}: expected a table, got {value!r}")
    return value


def resolve_source(local: str, source: str, base_dir: Path, where: str) -> str:
    """A local path made absolute against `base_dir`, or a hub id / tag left as it is.

    A source counts as local when it is written as a path (``./x``, ``../x``, ``/x``, ``~/x``)
    or when it names something that exists next to the profile; otherwise it is a hub id,
    the same precedence diffusers' ``from_pretrained`` applies. ``local`` is what the kind
    reads locally (`ModelKind.local`): a "folder", a "file", "any", or "never".
    """
    if local == "never":
        return source
    expanded = os.path.expanduser(source)
    explicit = (
        expanded != source
        or os.path.isabs(expanded)
        or source in (".", "..")
        or source.startswith(("./", "../", ".\\", "..\\"))
    )
    candidate = Path(expanded) if os.path.isabs(expanded) else base_dir / expanded
    if explicit or candidate.exists() or source.endswith(_CHECKPOINT_SUFFIXES):
        if not candidate.exists():
            raise ProfileError(f"{where}: local path {str(candidate)!r} does not exist")
        if local == "folder" and not candidate.is_dir():
            raise ProfileError(
                f"{where}: {str(candidate)!r} is not a folder; this kind reads a folder "
                "in the diffusers layout (unet/, vae/, ...)"
            )
        if local == "file" and not candidate.is_file():
            raise ProfileError(f"{where}: {str(candidate)!r} is not a checkpoint file")
        return str(candidate.resolve())
    if local == "folder" and not _HUB_ID.match(source):
        raise ProfileError(
            f"{where}: {source!r} is neither an existing local folder (relative paths are "
            f"read from {str(base_dir)!r}) nor a Hugging Face hub id 'owner/name'"
        )
    return source


def _spec_fields(spec: ModelSpec) -> dict[str, Any]:
    fields: dict[str, Any] = {"kind": spec.kind}
    if spec.source is not None:
        fields["source"] = spec.source
    fields.update(thaw(spec.options))
    return fields


def _merge_models(
    inherited: dict[str, dict[str, Any]], tables: Mapping[str, Any], base_dir: Path
) -> dict[str, ModelSpec]:
    merged = {role: dict(fields) for role, fields in inherited.items()}
    for role, table in tables.items():
        table = _table(table, f"models.{role}")
        fields = dict(table)
        if "source" in fields:
            source = fields["source"]
            if not isinstance(source, str) or not source.strip():
                raise ProfileError(f"models.{role}.source: expected a non-empty string, got {source!r}")
        parent = merged.get(role)
        if parent is not None and fields.get("kind", parent["kind"]) == parent["kind"]:
            # Overriding one field of an inherited role (say its source) keeps the rest.
            fields = {**parent, **fields}
        kind = model_kind(fields.get("kind"), f"models.{role}.kind")
        if "source" in table:
            fields["source"] = resolve_source(kind.local, table["source"], base_dir, f"models.{role}.source")
        for option in kind.path_options:
            if isinstance(table.get(option), str):
                # Weights named by an option are found like the source: next to the file.
                fields[option] = resolve_source("any", table[option], base_dir, f"models.{role}.{option}")
        merged[role] = fields
    specs = {}
    for role, fields in merged.items():
        fields = dict(fields)
        kind = fields.pop("kind")
        source = fields.pop("source", None)
        specs[role] = ModelSpec(role=role, kind=kind, source=source, options=fields)
    return specs


def read_profile(
    path: str | os.PathLike[str],
    resolve_extends: Callable[[str, Path, tuple[Path, ...]], Profile],
    stack: tuple[Path, ...] = (),
) -> Profile:
    """The profile in a TOML file; `resolve_extends(ref, base_dir, stack)` loads its parent."""
    path = Path(path).resolve()
    if path in stack:
        chain = " -> ".join(str(p) for p in (*stack, path))
        raise LocatedError(f"{path}: profile.extends makes a cycle: {chain}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LocatedError(f"{path}: cannot read the profile: {exc}") from None
    except UnicodeDecodeError as exc:
        raise LocatedError(f"{path}: not UTF-8 text (byte {exc.start}); a profile is a TOML file in UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LocatedError(f"{path}: not valid TOML: {exc}") from None
    try:
        return _build(data, path, resolve_extends, (*stack, path))
    except LocatedError:
        raise
    except ProfileError as exc:
        raise LocatedError(f"{path}: {exc}") from None


def _build(
    data: Mapping[str, Any],
    path: Path,
    resolve_extends: Callable[[str, Path, tuple[Path, ...]], Profile],
    stack: tuple[Path, ...],
) -> Profile:
    for key in data:
        if key not in _TOP_LEVEL:
            raise ProfileError(
                f"{key}: unknown table; {did_you_mean(key, _TOP_LEVEL)}a profile has [profile], "
                "[settings], [models.<role>], "
                "[methods.<name>] and [metrics.<name>]"
            )
    if "profile" not in data:
        raise ProfileError("profile: missing; a profile file starts with a [profile] table")
    head = _table(data["profile"], "profile")
    for key in head:
        if key not in _PROFILE_KEYS:
            raise ProfileError(
                f"profile.{key}: unknown key; {did_you_mean(key, _PROFILE_KEYS)}[profile] takes "
                f"{', '.join(_PROFILE_KEYS)}"
            )
    if "name" not in head:
        raise ProfileError("profile.name: missing")
    name = head["name"]
    if not isinstance(name, str) or not name.strip():
        raise ProfileError(f"profile.name: expected a non-empty string, got {name!r}")

    parent: Profile | None = None
    if "extends" in head:
        ref = head["extends"]
        if not isinstance(ref, str) or not ref.strip():
            raise ProfileError(f"profile.extends: expected a profile name or a path, got {ref!r}")
        parent = resolve_extends(ref, path.parent, stack)

    description = head.get("description", parent.description if parent else "")
    if not isinstance(description, str):
        raise ProfileError(f"profile.description: expected a string, got {description!r}")

    raw_settings = parent.settings.to_dict() if parent else {}
    own_settings = read_prompts(dict(_table(data.get("settings", {}), "settings")), path.parent)
    raw_settings.update(own_settings)
    settings = StudySettings.from_dict(raw_settings)

    inherited = {role: _spec_fields(spec) for role, spec in parent.models.items()} if parent else {}
    models = _merge_models(inherited, _table(data.get("models", {}), "models"), path.parent)
    methods = {name: dict(options) for name, options in parent.methods.items()} if parent else {}
    for method, options in _table(data.get("methods", {}), "methods").items():
        # A child's table sets single keys over its parent's, as a role's table does.
        methods[method] = {**methods.get(method, {}), **_table(options, f"methods.{method}")}
    metrics = {name: dict(options) for name, options in parent.metrics.items()} if parent else {}
    for metric, options in _table(data.get("metrics", {}), "metrics").items():
        metrics[metric] = {**metrics.get(metric, {}), **_table(options, f"metrics.{metric}")}
    return Profile(
        name=name,
        description=description,
        settings=settings,
        models=models,
        path=str(path),
        methods=methods,
        metrics=metrics,
    )
