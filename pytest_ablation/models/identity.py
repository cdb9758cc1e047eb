"""What a model is, as a small JSON-able dict: it goes into cache keys and the report.

Local weights are identified by their content, not only their path: a re-downloaded or
fine-tuned checkpoint in the same folder must not reuse cached videos. Hashing multi-GB files
on every run would cost minutes, so each file's digest is remembered against its size and
modification time in a small JSON file, and recomputed only when either changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any


HASH_MEMO_NAME = "file-hashes.json"
_CHUNK = 1 << 22
_LOCK = threading.Lock()


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pytest-ablation"


class HashMemo:
    """sha256 of files, remembered per (real path, size, mtime_ns) in
    `<cache_dir>/file-hashes.json`.

    Concurrent writers (pytest-xdist workers) each merge their new entries into what is on
    disk and replace the file atomically; a lost race costs a re-hash later, never a
    corrupt file.
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.path = self.cache_dir / HASH_MEMO_NAME
        self._new: dict[str, dict[str, Any]] = {}
        self._known: dict[str, dict[str, Any]] | None = None
        self.hashed: list[str] = []  # files actually read in this memo's lifetime

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def sha256(self, file: str | os.PathLike[str]) -> str:
        real = os.path.realpath(file)
        stat = os.stat(real)
        if self._known is None:
            self._known = self._read()
        entry = self._new.get(real) or self._known.get(real)
        if (
            isinstance(entry, dict)
            and entry.get("size") == stat.st_size
            and entry.get("mtime_ns") == stat.st_mtime_ns
            and isinstance(entry.get("sha256"), str)
        ):
            return entry["sha256"]
        digest = hashlib.sha256()
        with open(real, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
        self.hashed.append(real)
        self._new[real] = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": digest.hexdigest(),
        }
        return digest.hexdigest()

    def flush(self) -> None:
        if not self._new:
            return
        with _LOCK:
            merged = self._read()
            merged.update(self._new)
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=".file-hashes-", dir=self.cache_dir)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(merged, handle, indent=0, sort_keys=True)
                os.replace(tmp, self.path)
            except OSError:
                # A read-only home still gets correct identities, just without the memo.
                return
            self._known = merged
            self._new = {}


class LinkLoopError(ValueError):
    """A folder tree whose links lead back into itself: its files have no end."""


def _files_under(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    # Links are followed (a Hugging Face snapshot is links into its blobs), so a link back
    # to a folder above it would never end: such a loop is named. The same folder reached
    # by two links side by side is no loop, and is read under both names.
    above: dict[str, dict[tuple[int, int], str]] = {}
    for folder, dirs, files in os.walk(root, followlinks=True):
        status = os.stat(folder)
        key = (status.st_dev, status.st_ino)
        ancestors = above.get(os.path.dirname(folder), {}) if folder != str(root) else {}
        if key in ancestors:
            raise LinkLoopError(
                f"{folder} is a link back to {ancestors[key]}: a loop of links, whose files "
                "have no end; remove the link"
            )
        above[folder] = {**ancestors, key: folder}
        # Hidden entries are tool state (.git, .cache/huggingface), not weights.
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(folder) / name


def tree_sha256(root: str | os.PathLike[str], parts: Iterable[str] | None, memo: HashMemo) -> str:
    """One digest over the files of `root` (or of its `parts`), by relative path and content."""
    root = Path(root)
    if root.is_file():
        # A single checkpoint's digest is the file's own, comparable with the hub's listing.
        digest_of_file = memo.sha256(root)
        memo.flush()
        return digest_of_file
    targets = [root] if parts is None else [root / part for part in parts]
    digest = hashlib.sha256()
    for target in targets:
        if not target.exists():
            continue
        for file in _files_under(target):
            relative = file.relative_to(root).as_posix()
            digest.update(f"{relative}\0{memo.sha256(file)}\n".encode())
    memo.flush()
    return digest.hexdigest()


def local_weights_identity(
    source: str | None,
    local: str,
    options: dict[str, Any],
    cache_dir: str | os.PathLike[str] | None,
    parts: Iterable[str] | None = None,
    hub_revision: bool = True,
) -> dict[str, Any]:
    """Where a role's weights come from, as cache keys see it; pops from ``options`` what it
    has accounted for.

    A local copy is its content (a sha256 over the files, or over ``parts`` of a folder): the
    same checkpoint mounted at another path on another machine shares cache entries, and the
    hub revision it came from does not count. A hub id is the id and, with ``hub_revision``,
    its revision.
    """
    from pytest_ablation.models.pretrained import local_path

    path = local_path(source, local)
    if path is None:
        ident: dict[str, Any] = {"source": source}
        if hub_revision:
            ident["revision"] = options.pop("revision", "main")
        return ident
    options.pop("revision", None)
    folder_parts = list(parts) if parts is not None and os.path.isdir(path) else None
    return {"source": "local", "sha256": tree_sha256(path, folder_parts, HashMemo(cache_dir))}


def bundle_parts(names: Iterable[str], options: dict[str, Any]) -> list[str]:
    """The files of a diffusers-layout folder that make a bundle: its index and the parts'
    folders (``options.subfolders`` may move a part)."""
    folders = {name: name for name in names}
    folders.update(options.get("subfolders", {}))
    return ["model_index.json", *sorted(set(folders.values()))]
