"""A manifest of shipped weight files, and checking files against it before they load.

``manifest.json`` at the root of a weights folder lists every ``.safetensors`` file below it
with its SHA-256 and the dtype and shape of each tensor (read from the file's header, so
writing the manifest never loads a tensor). A file that differs from its entry is reported by
name: a tensor whose shape changed names that tensor and both shapes; any other change shows
as a hash mismatch. The model loaders check every local source that lies inside such a
folder tree (``pytest_ablation.models.pretrained.verified``), so a truncated download or a stale file
from another run fails loudly instead of producing quietly wrong studies.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FORMAT = "pytest-ablation-weights/1"
WEIGHT_SUFFIX = ".safetensors"


class WeightsError(ValueError):
    """A weight file is missing, unlisted, or differs from its manifest entry."""


def sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tensor_layout(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """{tensor name: {"dtype", "shape"}} from a safetensors header, tensors sorted by name."""
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) != 8:
            raise WeightsError(f"{path}: not a safetensors file (shorter than its header size)")
        (length,) = struct.unpack("<Q", prefix)
        header = handle.read(length)
    try:
        entries = json.loads(header)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: not a safetensors file (unreadable header: {exc})") from None
    if not isinstance(entries, dict):
        raise WeightsError(f"{path}: not a safetensors file (header is not a mapping)")
    return {
        name: {"dtype": entry["dtype"], "shape": list(entry["shape"])}
        for name, entry in sorted(entries.items())
        if name != "__metadata__"
    }


def weight_files(root: str | os.PathLike[str]) -> list[Path]:
    """Every safetensors file under ``root``, sorted, as paths relative to it."""
    base = Path(root)
    return sorted(path.relative_to(base) for path in base.rglob(f"*{WEIGHT_SUFFIX}") if path.is_file())


def write_manifest(root: str | os.PathLike[str]) -> Path:
    """List every weight file under ``root`` in ``root/manifest.json`` (replacing it)."""
    from pytest_ablation.files import write_json_atomic

    base = Path(root)
    files = {}
    for relative in weight_files(base):
        path = base / relative
        files[relative.as_posix()] = {
            "sha256": sha256(path),
            "bytes": path.stat().st_size,
            "tensors": tensor_layout(path),
        }
    return write_json_atomic(base / MANIFEST, {"format": FORMAT, "files": files})


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: cannot read the weights manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise WeightsError(f"{path}: not a weights manifest (expected format {FORMAT!r})")
    return manifest


def manifest_root(path: str | os.PathLike[str]) -> Path | None:
    """The nearest folder at or above ``path`` holding a weights manifest, or None.

    Only a ``manifest.json`` of this format counts: other tools' manifests of the same name
    are passed over.
    """
    start = Path(path).resolve()
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        listing = candidate / MANIFEST
        if listing.is_file():
            try:
                if json.loads(listing.read_text(encoding="utf-8")).get("format") == FORMAT:
                    return candidate
            except (OSError, ValueError, AttributeError):
                continue
    return None


def verify_weights(folder: str | os.PathLike[str]) -> list[Path]:
    """Check the weight files at or under ``folder`` (a folder, or one file) against the
    manifest of the tree it lies in; returns the files checked.

    Raises WeightsError naming the file when a listed file is missing, a file is not listed,
    a tensor's dtype or shape differs (naming the tensor, expected and actual), or the bytes
    differ (expected and actual SHA-256).
    """
    target = Path(folder).resolve()
    root = manifest_root(target)
    if root is None:
        raise WeightsError(f"{folder}: no {MANIFEST} of weights at or above it")
    listed = read_manifest(root)["files"]
    scope = target.relative_to(root)

    def inside(relative: str) -> bool:
        return scope == Path(".") or Path(relative) == scope or scope in Path(relative).parents

    expected = {relative: entry for relative, entry in listed.items() if inside(relative)}
    if target.is_file():
        if target.suffix != WEIGHT_SUFFIX:
            return []
        present = [scope.as_posix()]
    else:
        present = [(scope / relative).as_posix() for relative in weight_files(target)]
    unlisted = sorted(set(present) - set(expected))
    if unlisted:
        raise WeightsError(
            f"{root / unlisted[0]}: not listed in {root / MANIFEST}; if it is meant to be "
            "there, refresh the manifest (python -m toyworld.train writes it, run from the "
            "repository root)"
        )
    checked = []
    for relative, entry in sorted(expected.items()):
        path = root / relative
        if not path.is_file():
            raise WeightsError(f"{path}: missing (listed in {root / MANIFEST})")
        _compare_layout(path, entry["tensors"], tensor_layout(path))
        actual = sha256(path)
        if actual != entry["sha256"]:
            raise WeightsError(
                f"{path}: contents differ from {root / MANIFEST}: expected sha256 {entry['sha256']}, got {actual}"
            )
        checked.append(path)
    return checked


def _compare_layout(path: Path, expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]]) -> None:
    for name, want in expected.items():
        have = actual.get(name)
        if have is None:
            raise WeightsError(f"{path}: tensor {name!r} is missing (expected shape {want['shape']})")
        if have["shape"] != want["shape"]:
            raise WeightsError(f"{path}: tensor {name!r} has shape {have['shape']}, expected {want['shape']}")
        if have["dtype"] != want["dtype"]:
            raise WeightsError(f"{path}: tensor {name!r} has dtype {have['dtype']}, expected {want['dtype']}")
    extra = sorted(set(actual) - set(expected))
    if extra:
        raise WeightsError(f"{path}: unexpected tensor {extra[0]!r} (not in the manifest)")


def verify_if_listed(path: str | os.PathLike[str]) -> list[Path]:
    """``verify_weights(path)`` when ``path`` lies in a tree with a weights manifest; else
    nothing (most local checkpoints have none)."""
    if manifest_root(path) is None:
        return []
    return verify_weights(path)


__all__ = [
    "MANIFEST",
    "WeightsError",
    "manifest_root",
    "read_manifest",
    "tensor_layout",
    "verify_if_listed",
    "verify_weights",
    "write_manifest",
]
