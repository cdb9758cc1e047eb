"""Prompts from a file: a profile's ``prompts_file`` instead of a ``prompts`` list.

Two formats, told apart by the file's suffix (in any case: ``suite.JSON`` is JSON):

- text (any suffix but ``.json``): one prompt per line; blank lines and lines starting with
  ``#`` are skipped (VBench's ``prompts/prompts_per_dimension/*.txt`` are read as they
  are);
- ``.json``: VBench's prompt suite (``VBench_full_info.json``), a list of entries with
  ``prompt_en`` and the ``dimension`` list each prompt serves; ``prompts_dimension`` keeps
  the entries of one dimension. VBench lists a prompt that serves two groups of dimensions
  once per group (its videos, named by the prompt, serve both), so entries of one prompt
  with no dimension in common are one prompt, at its first entry.

Both are UTF-8, with or without a byte-order mark. A prompt given twice is an error naming
it and both places (lines, or suite entries): it would be one sample counted twice, since
the same prompt and seed give the same video. VBench's ``prompts/all_dimension.txt`` lists
two prompts twice (once per group of dimensions), so it is refused: read
``VBench_full_info.json`` for the whole suite.

``prompts_sample = N`` keeps N of them, drawn without replacement by ``prompts_seed``
(default 0), in the file's order: the same file and seed give the same prompts everywhere.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pytest_ablation.profiles.settings import ProfileError, shown

# The settings keys that describe a prompts file; they become ``prompts`` when it is read.
FILE_KEYS = ("prompts_file", "prompts_dimension", "prompts_sample", "prompts_seed")


def _where(path: Path) -> str:
    return f"settings.prompts_file: {str(path)!r}"


def _text_prompts(path: Path, text: str) -> list[str]:
    """One prompt per line; a prompt given twice is an error naming both lines."""
    first: dict[str, int] = {}
    prompts = []
    for number, line in enumerate(text.split("\n"), start=1):
        prompt = line.strip()
        if not prompt or prompt.startswith("#"):
            continue
        if prompt in first:
            raise ProfileError(
                f"{_where(path)} line {number}: prompt {shown(prompt)} repeats line "
                f"{first[prompt]}; each prompt is one sample, list it once"
            )
        first[prompt] = number
        prompts.append(prompt)
    return prompts


def _suite_entry(path: Path, index: int, entry: Any) -> tuple[str, tuple[str, ...]]:
    """(prompt, dimensions) of entry ``index`` of a VBench suite, or ProfileError naming it."""
    where = f"{_where(path)} entry [{index}]"
    if not isinstance(entry, dict):
        raise ProfileError(
            f"{where}: got {shown(entry)}; expected VBench's prompt suite "
            "entry, an object with 'prompt_en' and 'dimension'"
        )
    prompt = entry.get("prompt_en")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ProfileError(f"{where}: 'prompt_en' is {shown(prompt)}; expected the prompt, a non-empty string")
    dimensions = entry.get("dimension")
    dimensions = [] if dimensions is None else dimensions
    if not isinstance(dimensions, list) or not all(isinstance(d, str) for d in dimensions):
        raise ProfileError(
            f"{where}: 'dimension' is {shown(dimensions)}; expected a list of "
            'dimension names, e.g. ["subject_consistency"]'
        )
    return prompt, tuple(dimensions)


def _suite_prompts(path: Path, suite: Any, dimension: str | None) -> list[str]:
    if not isinstance(suite, list):
        raise ProfileError(
            f"{_where(path)}: got {shown(suite)}; expected VBench's prompt suite, "
            "a list of entries with 'prompt_en' and 'dimension'"
        )
    entries = [_suite_entry(path, index, entry) for index, entry in enumerate(suite)]
    if dimension is not None:
        chosen = [(i, p, d) for i, (p, d) in enumerate(entries) if dimension in d]
        if not chosen:
            known = sorted({d for _, dims in entries for d in dims})
            raise ProfileError(
                f"settings.prompts_dimension: got {dimension!r}; the suite's dimensions are: {', '.join(known)}"
            )
    else:
        chosen = [(i, p, d) for i, (p, d) in enumerate(entries)]
    first: dict[str, tuple[int, set[str]]] = {}
    prompts = []
    for index, prompt, dimensions in chosen:
        if prompt in first:
            earlier, served = first[prompt]
            shared = served & set(dimensions)
            # Entries of one prompt for other dimensions are VBench's way of listing a prompt
            # that serves two groups; anything else lists one sample twice.
            if dimension is not None or shared or not served or not dimensions:
                what = f" for dimension {', '.join(sorted(shared))}" if shared else ""
                raise ProfileError(
                    f"{_where(path)} entry [{index}]: prompt {shown(prompt)} repeats entry "
                    f"[{earlier}]{what}; each prompt is one sample, list it once"
                )
            served.update(dimensions)  # the same prompt for other dimensions: one prompt
            continue
        first[prompt] = (index, set(dimensions))
        prompts.append(prompt)
    return prompts


def _entries(path: Path, dimension: str | None) -> list[str]:
    try:
        # utf-8-sig: a byte-order mark (as some editors write) is not part of the first line.
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ProfileError(f"{_where(path)}: cannot be read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise ProfileError(f"{_where(path)}: not UTF-8 text") from None
    if path.suffix.lower() != ".json":
        if dimension is not None:
            raise ProfileError("settings.prompts_dimension: only a VBench .json suite has dimensions")
        return _text_prompts(path, text)
    try:
        suite = json.loads(text)
    except json.JSONDecodeError as error:
        raise ProfileError(f"{_where(path)}: not valid JSON ({error})") from None
    return _suite_prompts(path, suite, dimension)


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
            raise ProfileError(f"settings.prompts_sample: got {sample}; the file holds {len(prompts)} prompts")
        # Ranked by a hash of (seed, prompt): no dependence on Python's random module, and a
        # prompt's chance of being kept does not depend on where the file lists it.
        rank = sorted(
            range(len(prompts)), key=lambda i: (hashlib.sha256(f"{seed}\0{prompts[i]}".encode()).hexdigest(), i)
        )
        kept = sorted(rank[:sample])
        prompts = [prompts[i] for i in kept]
    out["prompts"] = prompts
    return out
