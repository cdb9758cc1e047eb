"""A content-addressed cache of generated videos and their scores.

Keys are digests of everything that determines a result (see ``keys.digest``), so a
changed model, configuration, prompt, seed or package version simply misses. Entries carry
a checksum of their own content: a truncated or altered file is reported, removed and
recomputed, never trusted. An entry that cannot be read at all (another user's file without
read permission, a folder where the file should be) is reported and recomputed too, and
written over when it can be; when it cannot, the value is still returned and the run's
summary warns that the entry could not be replaced. A file lock per key makes concurrent
workers (or machines sharing a filesystem) compute each entry once: the second one waits
and then reads it. Where the filesystem gives no lock, entries are still written, each by
an atomic rename of a whole file.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from collections.abc import Callable

from ..files import write_bytes_atomic

if TYPE_CHECKING:
    import torch

LAYOUT_VERSION = "v1"
T = TypeVar("T")


class CorruptEntry(Exception):
    """A cache file exists but its content cannot be trusted."""


@dataclass
class StoredVideo:
    """A generated video as it is scored: uint8 frames (F, 3, H, W), as a player shows them."""

    frames: torch.Tensor
    condition: torch.Tensor | None = None
    info: dict = field(default_factory=dict)

    def as_float(self) -> torch.Tensor:
        return self.frames.float() / 255.0

    def condition_as_float(self) -> torch.Tensor | None:
        return None if self.condition is None else self.condition.float() / 255.0


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    memory_hits: int = 0
    corrupted: list = field(default_factory=list)
    unwritten: list = field(default_factory=list)
    unreadable: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "memory_hits": self.memory_hits,
            "corrupted": list(self.corrupted),
            "unwritten": list(self.unwritten),
            "unreadable": list(self.unreadable),
        }


class ResultCache:
    def __init__(self, root: str | os.PathLike | None, *, enabled: bool = True):
        self.root = Path(root) / LAYOUT_VERSION if root is not None else None
        self.enabled = enabled and root is not None
        self.stats = CacheStats()
        self._memory: dict[tuple[str, str], Any] = {}
        # Entries found unreadable in this run: writing over them is a replacement.
        self._unreadable: set[Path] = set()

    # -- public API -------------------------------------------------------------------
    def video(self, key: str, compute: Callable[[], StoredVideo]) -> StoredVideo:
        return self._get_or_compute("videos", key, ".safetensors", _load_video, _dump_video, compute)

    def has_video(self, key: str) -> bool:
        """Whether ``video(key, ...)`` would find an entry (unverified: a corrupted one is
        still recomputed when read)."""
        if ("videos", key) in self._memory:
            return True
        return self.enabled and self.path("videos", key, ".safetensors").exists()

    def score(self, key: str, compute: Callable[[], dict]) -> dict:
        return self._get_or_compute("scores", key, ".json", _load_json, _dump_json, compute)

    def tensors(self, key: str, compute: Callable[[], dict]) -> dict:
        """A named set of CPU tensors (e.g. tuned weights), checked like every other entry.

        Unlike videos and scores these can weigh gigabytes, so with the disk cache on they
        are read back from disk when asked for again rather than held in memory.
        """
        return self._get_or_compute(
            "tensors",
            key,
            ".safetensors",
            _load_tensors,
            _dump_tensors,
            compute,
            remember=not self.enabled,
        )

    def path(self, kind: str, key: str, suffix: str) -> Path:
        assert self.root is not None
        return self.root / kind / key[:2] / f"{key}{suffix}"

    # -- machinery ----------------------------------------------------------------------
    def _get_or_compute(self, kind, key, suffix, load, dump, compute: Callable[[], T], remember: bool = True) -> T:
        memo_key = (kind, key)
        if memo_key in self._memory:
            self.stats.memory_hits += 1
            return self._memory[memo_key]
        if not self.enabled:
            value = compute()
            self.stats.misses += 1
        else:
            value = self._through_disk(kind, key, suffix, load, dump, compute)
        if remember:
            self._memory[memo_key] = value
        return value

    def _through_disk(self, kind, key, suffix, load, dump, compute):
        path = self.path(kind, key, suffix)
        found = self._read(path, key, load)
        if found is not None:
            self.stats.hits += 1
            return found
        lock = self._lock(key)
        if lock is None:
            # No lock here (a full or read-only disk, or a filesystem without locks: some
            # Lustre and NFS set-ups, object-store mounts). The entry is still written: its
            # name is its content's key and the write is an atomic rename, so two writers of
            # one key leave one whole, valid file; at worst both computed it.
            value = compute()
            self.stats.misses += 1
            self._write(path, key, dump, value)
            return value
        try:
            # Another process may have written the entry while this one waited.
            found = self._read(path, key, load)
            if found is not None:
                self.stats.hits += 1
                return found
            value = compute()
            self._write(path, key, dump, value)
            self.stats.misses += 1
            return value
        finally:
            lock.release()

    def _lock(self, key: str):
        """The key's file lock, acquired; None where this filesystem cannot give one."""
        from filelock import FileLock

        assert self.root is not None  # only an enabled cache, which has a root, locks
        lock_path = self.root / "locks" / f"{key}.lock"
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(lock_path))
            lock.acquire()
        except OSError:
            return None
        return lock

    def _write(self, path: Path, key: str, dump, value) -> None:
        try:
            write_bytes_atomic(path, dump(key, value))
        except OSError as error:
            # A cache that cannot be written (e.g. a full disk) costs a recomputation next
            # time, not this run: the value is good, only keeping it failed.
            self._unwritten(path, error)

    def _unwritten(self, path: Path, error: OSError) -> None:
        what = "the unreadable entry could not be replaced: " if path in self._unreadable else ""
        self.stats.unwritten.append(f"{path}: {what}{error.strerror or error}")

    def _read(self, path: Path, key: str, load):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            # Unreadable, not missing: e.g. a shared cache entry another user wrote with
            # umask 077, or a folder in the entry's place. Recompute it, as if it were missing.
            if path not in self._unreadable:
                self._unreadable.add(path)
                self.stats.unreadable.append(f"{path}: {error.strerror or error}")
            return None
        try:
            return load(key, data)
        except Exception as error:  # any failure to parse or verify means: do not trust it
            self.stats.corrupted.append(f"{path}: {error}")
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            return None


def _content_digest(*chunks: bytes) -> str:
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(len(chunk).to_bytes(8, "little"))
        hasher.update(chunk)
    return hasher.hexdigest()


def _dump_safetensors(key: str, tensors: dict, info: str = "{}") -> bytes:
    from safetensors.torch import save

    tensors = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    checksum = _tensors_digest(key, info, tensors)
    return save(tensors, metadata={"key": key, "info": info, "sha256": checksum})


def _load_safetensors(key: str, data: bytes) -> tuple[dict, str]:
    """The tensors of a checked entry and its ``info`` text; CorruptEntry when unsound."""
    from safetensors.torch import load

    metadata = _safetensors_metadata(data)
    tensors = load(data)
    if metadata.get("key") != key:
        raise CorruptEntry("entry belongs to another key")
    info = metadata.get("info", "{}")
    if _tensors_digest(key, info, tensors) != metadata.get("sha256"):
        raise CorruptEntry("checksum mismatch")
    return tensors, info


def _tensors_digest(key: str, info: str, tensors: dict) -> str:
    return _content_digest(key.encode(), info.encode(), *(_tensor_bytes(tensors[n]) for n in sorted(tensors)))


def _tensor_bytes(tensor) -> bytes:
    # numpy has no bfloat16; the raw bytes are what the file holds either way.
    import torch

    return tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""


def _safetensors_metadata(data: bytes) -> dict:
    if len(data) < 8:
        raise CorruptEntry("file too short for a safetensors header")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > len(data) - 8:
        raise CorruptEntry("header longer than the file")
    header = json.loads(data[8 : 8 + header_len])
    return header.get("__metadata__") or {}


def _dump_video(key: str, value: StoredVideo) -> bytes:
    import torch

    tensors = {"frames": value.frames}
    if value.condition is not None:
        tensors["condition"] = value.condition
    for name, tensor in tensors.items():
        if tensor.dtype != torch.uint8:
            raise TypeError(f"cached video tensor {name!r} must be uint8, got {tensor.dtype}")
    return _dump_safetensors(key, tensors, json.dumps(value.info, sort_keys=True))


def _load_video(key: str, data: bytes) -> StoredVideo:
    tensors, info = _load_safetensors(key, data)
    return StoredVideo(tensors["frames"], tensors.get("condition"), json.loads(info))


def _dump_tensors(key: str, tensors: dict) -> bytes:
    return _dump_safetensors(key, tensors)


def _load_tensors(key: str, data: bytes) -> dict:
    return _load_safetensors(key, data)[0]


def _dump_json(key: str, payload: dict) -> bytes:
    body = json.dumps(payload, sort_keys=True)
    entry = {"key": key, "payload": payload, "sha256": _content_digest(key.encode(), body.encode())}
    return json.dumps(entry, sort_keys=True).encode("utf-8")


def _load_json(key: str, data: bytes) -> dict:
    entry = json.loads(data.decode("utf-8"))
    if entry.get("key") != key:
        raise CorruptEntry("entry belongs to another key")
    body = json.dumps(entry["payload"], sort_keys=True)
    if _content_digest(key.encode(), body.encode()) != entry.get("sha256"):
        raise CorruptEntry("checksum mismatch")
    return entry["payload"]
