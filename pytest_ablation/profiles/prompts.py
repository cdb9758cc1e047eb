"""Prompts from a file: a profile's ``prompts_file`` instead of a ``prompts`` list.

Two formats, told apart by the file's suffix:

- text (any suffix but ``.json``): one prompt per line; blank lines and lines starting with
  ``#`` are skipped (VBench's ``prompts/all_dimension.txt`` and
  ``prompts/prompts_per_dimension/*.txt`` are read as they are);
- ``.json``: VBench's prompt suite (``VBench_full_info.json``), a list of entries with
  ``prompt_en`` and the ``dimension`` list each prompt serves; ``prompts_dimension`` keeps
  the entries of one dimension.

``prompts_sample = N`` keeps N of them, drawn without replacement by ``prompts_seed``
(default 0), in the file's order: the same file and seed give the same prompts everywhere.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pytest_ablation.profiles.settings import ProfileError

# The settings keys that describe a prompts file; they become ``prompts`` when it is read.
FILE_KEYS = ("prompts_file", "prompts_dimension", "prompts_sample", "prompts_seed")


def _entries(path: Path, dimension: str | None) -> list[str]:
    where = f"settings.prompts_file: {str(path)!r}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ProfileError(f"{where}: cannot be read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise ProfileError(f"{where}: not UTF-8 text") from None
    if path.suffix != ".json":
        if dimension is not None:
            raise ProfileError("settings.prompts_dimension: only a VBench .json suite has dimensions")
        return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    try:
        suite = json.loads(text)
    except json.JSONDecodeError as error:
        raise ProfileError(f"{where}: not valid JSON ({error})") from None
    if not isinstance(suite, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("prompt_en"), str) for entry in suite
    ):
        raise ProfileError(
            f"{where}: expected VBench's prompt suite, a list of entries with 'prompt_en' "
            "and 'dimension'"
        )
    if dimension is None:
        return [entry["prompt_en"] for entry in suite]
    chosen = [entry["prompt_en"] for entry in suite if dimension in (entry.get("dimension") or ())]
    if not chosen:
        known = sorted({d for entry in suite for d in (entry.get("dimension") or ())})
        raise ProfileError(
            f"settings.prompts_dimension: got {dimension!r}; the suite's dimensions are: "
            f"{', '.join(known)}"
        )
    return chosen


def read_prompts(settings: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """``settings`` with its ``prompts_file`` (relative to ``base_dir``) read into ``prompts``;
    unchanged when it names no file."""
    if "prompts_file" not in settings:
        stray = [key for key in FILE_KEYS if key in settings]
        if stray:
            raise ProfileError(f"settings.{stray[0]}: only with settings.prompts_file")
        return settings
    if "prompts" in settings:
        raise ProfileError("settings.prompts_file: give either prompts or prompts_file, not both")
    out = dict(settings)
    name = out.pop("prompts_file")
    dimension = out.pop("prompts_dimension", None)
    sample = out.pop("prompts_sample", None)
    seed = out.pop("prompts_seed", 0)
    if not isinstance(name, str) or not name.strip():
        raise ProfileError(f"settings.prompts_file: got {name!r}; expected a file path")
    if dimension is not None and not isinstance(dimension, str):
        raise ProfileError(f"settings.prompts_dimension: got {dimension!r}; expected a dimension name")
    for key, value in (("prompts_sample", sample), ("prompts_seed", seed)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ProfileError(f"settings.{key}: got {value!r}; expected a whole number >= 0")
    path = Path(name).expanduser()
    path = path if path.is_absolute() else base_dir / path
    prompts = _entries(path, dimension)
    if not prompts:
        raise ProfileError(f"settings.prompts_file: {str(path)!r} holds no prompts")
    if sample is not None:
        if not 1 <= sample <= len(prompts):
            raise ProfileError(
                f"settings.prompts_sample: got {sample}; the file holds {len(prompts)} prompts"
            )
        # Ranked by a hash of (seed, prompt): no dependence on Python's random module, and a
        # prompt's chance of being kept does not depend on where the file lists it.
        rank = sorted(range(len(prompts)), key=lambda i: (hashlib.sha256(
            f"{seed}\0{prompts[i]}".encode("utf-8")).hexdigest(), i))
        kept = sorted(rank[:sample])
        prompts = [prompts[i] for i in kept]
    out["prompts"] = prompts
    return out
