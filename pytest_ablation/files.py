"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any
from collections.abc import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files only their owner can read; reports and cache entries are meant to be
# shared (a team's cache folder, a report served by a web server), so they get the
# permissions any new file would get.
_FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def removed_on_error(tmp: str | os.PathLike[str]) -> Iterator[None]:
    """Remove the temporary file ``tmp`` when the block raises (and let the error go on)."""
    try:
        yield
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place.

    The rename is atomic on POSIX and Windows, so an interrupted run or a concurrent reader
    sees either the old file or the new one, never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with removed_on_error(tmp):
        os.chmod(tmp, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    return path


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def strict_json(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    return value


def write_json_atomic(path: str | os.PathLike[str], payload: Any) -> Path:
    """Strict JSON (NaN and infinities written as null), written atomically."""
    text = json.dumps(strict_json(payload), indent=2, sort_keys=False, allow_nan=False)
    return write_text_atomic(path, text + "\n")


def check_writable_dir(path: str | os.PathLike[str]) -> str | None:
    """Return why ``path`` cannot hold new files, or None when it can.

    It creates nothing: a folder that does not exist yet is judged by the nearest folder
    above it, where it would be made when something is first written (a run that writes
    nothing leaves no empty folder behind)."""
    existing = Path(path)
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        return error.strerror or str(error)
    return None


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Free space on the disk holding ``path``, or None when it cannot be told."""
    import shutil

    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None
