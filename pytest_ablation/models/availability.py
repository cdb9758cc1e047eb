"""Whether a profile's real checkpoints are on this machine, asked before anything loads.

A role whose source is a Hugging Face hub id (diffusers bundles) or an open_clip tag is
looked up in the local caches without any network call. What is missing is said in one line
per role, with how to supply it; a run that would have to download it stops at start-up when
it cannot (``HF_HUB_OFFLINE`` set, or the hub unreachable within a few seconds) instead of
printing the hub's tracebacks or waiting on a network that is not there.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any
from collections.abc import Iterable
from urllib.parse import urlparse

if TYPE_CHECKING:
    from pytest_ablation.profiles.spec import ModelSpec

DIFFUSERS_KINDS = ("stable-diffusion", "stable-video-diffusion")
OPEN_CLIP_KIND = "open-clip"
OPEN_CLIP_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
# How long the start-up check waits for the hub before calling it unreachable.
REACH_SECONDS = 3.0


def missing_weights(models: Iterable[ModelSpec]) -> list[str]:
    """A line per role whose weights are not on this machine (empty when all are)."""
    lines = []
    for spec in models:
        line = _missing(spec)
        if line is not None:
            lines.append(line)
    return lines


def _missing(spec: ModelSpec) -> str | None:
    from pytest_ablation.models.pretrained import local_path

    if spec.source is None:
        return None
    where = f"models.{spec.role}"
    if spec.kind in DIFFUSERS_KINDS:
        if local_path(spec.source, "folder") is not None:
            return None
        revision = (spec.options or {}).get("revision")
        if _in_hub_cache(spec.source, ("model_index.json",), revision):
            return None
        return (
            f"{where}: {spec.source!r} is not in the Hugging Face cache ({_hub_cache()}); "
            f"download it (`huggingface-cli download {spec.source}`) or set {where}.source to "
            "a local folder"
        )
    if spec.kind == OPEN_CLIP_KIND:
        if local_path(spec.source, "file") is not None:
            return None
        name = (spec.options or {}).get("name")
        if not isinstance(name, str):
            return None  # the profile's own check names this
        return _missing_open_clip(where, name, spec.source)
    return None


def _missing_open_clip(where: str, name: str, tag: str) -> str | None:
    from open_clip.pretrained import get_pretrained_cfg

    config = get_pretrained_cfg(name, tag) or {}
    if not config:
        return (
            f"{where}: open_clip has no pretrained {tag!r} weights for {name!r}; set "
            f"{where}.source to a checkpoint file"
        )
    repo = (config.get("hf_hub") or "").strip("/")
    if repo and _in_hub_cache(repo, OPEN_CLIP_FILES, None):
        return None
    url = config.get("url")
    if url and os.path.isfile(os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(urlparse(url).path))):
        return None
    origin = f"the Hugging Face cache ({_hub_cache()}, {repo})" if repo else "open_clip's cache"
    return (
        f"{where}: open_clip {name} {tag!r} weights are not in {origin}; download them once "
        f"with network, or set {where}.source to a checkpoint file"
    )


def _in_hub_cache(repo: str, filenames: Iterable[str], revision: Any) -> bool:
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        try:
            found = try_to_load_from_cache(repo, filename, revision=revision)
        except Exception:  # noqa: BLE001 - a malformed id is the loader's to report
            return False
        if isinstance(found, str):
            return True
    return False


def _hub_cache() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def offline() -> bool:
    """Whether the Hugging Face hub is switched off (``HF_HUB_OFFLINE``)."""
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_reachable(seconds: float = REACH_SECONDS) -> bool:
    """Whether a connection to the hub's host opens within ``seconds`` (name resolution
    included, which a socket timeout alone does not bound)."""
    import socket

    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or 443
    reached: list[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=seconds):
                reached.append(True)
        except OSError:
            pass

    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(seconds)
    return bool(reached)
