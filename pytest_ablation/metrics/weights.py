"""Weight files of the metrics that bring their own model (DINO, LAION aesthetic, RAFT, I3D...).

A metric declares the weight files it needs by name (``MetricSpec.weights``). Each file is
found on this machine, never downloaded: first the path in its environment variable, then
the Hugging Face cache (looked up offline). A study naming a metric whose weights or extra
are missing stops at collection with a message naming the variable to set and the extra to
install; `pytest-ablation metrics` shows what is present.

Environment variables reach pytest-xdist workers and shard jobs without further plumbing,
and a root ``conftest.py`` may set them (``os.environ.setdefault(...)``) for a whole project.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable


@dataclass(frozen=True)
class WeightFile:
    """One checkpoint a metric backend loads.

    ``hub`` is ``(repo_id, filename)`` in the Hugging Face cache, or None when the weights
    are not published there; ``modules`` are the Python modules the backend imports, which
    the ``extra`` installs.
    """

    name: str
    variable: str
    description: str
    hub: tuple[str, str] | None = None
    extra: str | None = None
    modules: tuple[str, ...] = ()
    # The backend runs the model in float16 on a GPU and float32 on the CPU.
    half_on_gpu: bool = False

    def precision(self, device: Any) -> str:
        """The precision the backend computes in on ``device``: part of a score's key."""
        on_gpu = not str(device).startswith("cpu")
        return "float16" if self.half_on_gpu and on_gpu else "float32"

    def path(self) -> Path | None:
        """The local file, or None when neither the variable nor the hub cache has it."""
        configured = os.environ.get(self.variable, "").strip()
        if configured:
            path = Path(configured).expanduser()
            return path if path.is_file() else None
        if self.hub is None:
            return None
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        # Read at call time, so a variable set by a conftest after huggingface_hub was
        # imported still counts.
        cache_dir = os.environ.get("HF_HUB_CACHE") or None
        found = try_to_load_from_cache(*self.hub, cache_dir=cache_dir)
        return Path(found) if isinstance(found, str) and os.path.isfile(found) else None

    def missing_modules(self) -> list[str]:
        return [module for module in self.modules if importlib.util.find_spec(module) is None]

    def problem(self) -> str | None:
        """Why this file cannot be used here, naming what to do; None when it can."""
        missing = self.missing_modules()
        if missing:
            extra = f'pip install "pytest-ablation[{self.extra}]"' if self.extra else "install them"
            return f"{self.description} needs the module(s) {', '.join(missing)}, which are not installed: {extra}"
        if self.path() is not None:
            return None
        configured = os.environ.get(self.variable, "").strip()
        if configured:
            return f"{self.variable}={configured!r} is not a file ({self.description})"
        where = f" or put {self.hub[1]!r} of {self.hub[0]!r} in the Hugging Face cache" if self.hub else ""
        return (
            f"{self.description}: weights not found; set {self.variable} to the checkpoint's "
            f"path{where} (nothing is downloaded)"
        )

    def status(self) -> str:
        """One line for the metric catalogue."""
        missing = self.missing_modules()
        if missing:
            return f"{self.name}: needs module(s) {', '.join(missing)}"
        path = self.path()
        return f"{self.name}: present ({path})" if path is not None else (f"{self.name}: missing (set {self.variable})")

    def require(self) -> Path:
        problem = self.problem()
        if problem is not None:
            raise WeightsMissing(problem)
        return self.path()  # type: ignore[return-value]

    def identity(self) -> dict[str, str]:
        """What the file is, by content, for score cache keys (hashed once per process and
        file version, and remembered across runs by the file-hash memo)."""
        from pytest_ablation.models.identity import HashMemo

        path = self.require()
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _IDENTITIES:
            memo = HashMemo()
            try:
                _IDENTITIES[key] = memo.sha256(path)
            finally:
                memo.flush()
        return {"weights": self.name, "sha256": _IDENTITIES[key]}


class WeightsMissing(RuntimeError):
    """A metric's weights or extra are not on this machine."""


_FILES: dict[str, WeightFile] = {}
_IDENTITIES: dict[tuple, str] = {}


def register_weight_file(weight_file: WeightFile, *, replace: bool = False) -> None:
    if not isinstance(weight_file, WeightFile):
        raise TypeError(f"register_weight_file expects a WeightFile, got {type(weight_file).__name__}")
    if weight_file.name in _FILES and not replace and _FILES[weight_file.name] != weight_file:
        raise ValueError(f"a weight file named {weight_file.name!r} is already registered")
    _FILES[weight_file.name] = weight_file


def weight_file(name: str) -> WeightFile:
    try:
        return _FILES[name]
    except KeyError:
        raise ValueError(f"unknown weight file {name!r}; known: {', '.join(sorted(_FILES)) or 'none'}") from None


def weight_files() -> list[WeightFile]:
    return [_FILES[name] for name in sorted(_FILES)]


_MODELS: dict[tuple, Any] = {}
_MODELS_LOCK = threading.Lock()


def load_once(name: str, device: Any, build: Callable[[Path, Any], Any]) -> Any:
    """``build(path, device)`` for the weight file ``name``, kept for the process's lifetime
    and rebuilt only when the file or the device changes."""
    path = weight_file(name).require()
    stat = path.stat()
    key = (name, str(path.resolve()), stat.st_size, stat.st_mtime_ns, str(device))
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = _MODELS[key] = build(path, device)
        return model


def release_models(device: Any) -> list[str]:
    """Drop the metric models built on ``device`` (the next ``load_once`` builds them
    again); the weight files released."""
    with _MODELS_LOCK:
        keys = [key for key in _MODELS if str(key[4]).split("@")[0] == str(device)]
        for key in keys:
            del _MODELS[key]
    return sorted({f"metric weights {key[0]}" for key in keys})


def _register_builtins() -> None:
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib

    declared = tomllib.loads(Path(__file__).with_name("weights.toml").read_text(encoding="utf-8"))
    for name, fields in declared.items():
        hub = fields.pop("hub", None)
        register_weight_file(
            WeightFile(
                name=name,
                hub=tuple(hub) if hub else None,
                modules=tuple(fields.pop("modules", ())),
                **fields,
            )
        )


_register_builtins()
