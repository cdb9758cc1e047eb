"""The bundles of pipeline parts that `load_model` returns for the diffusion kinds."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


def _diffusers_version() -> str:
    import diffusers

    return diffusers.__version__


class _Components:
    _pipeline: str = ""
    # Entries of model_index.json that the pipeline class expects but the bundle lacks.
    _absent: dict[str, Any] = {}

    def parts(self) -> Iterator[tuple[str, Any]]:
        for f in fields(self):  # type: ignore[arg-type]
            yield f.name, getattr(self, f.name)

    def modules(self) -> dict[str, Any]:
        """The parts that are torch modules (those with weights)."""
        import torch

        return {name: part for name, part in self.parts() if isinstance(part, torch.nn.Module)}

    def save_pretrained(self, folder: str | os.PathLike[str]) -> Path:
        """Write every part to `folder/<part>/` and a model_index.json: the diffusers layout,
        which the pretrained kinds and the matching diffusers pipeline both read."""
        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        index: dict[str, Any] = {
            "_class_name": self._pipeline,
            "_diffusers_version": _diffusers_version(),
        }
        for name, part in self.parts():
            part.save_pretrained(root / name)
            library = type(part).__module__.split(".")[0]
            index[name] = [library, type(part).__name__]
        index.update(self._absent)
        tmp = root / "model_index.json.tmp"
        tmp.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, root / "model_index.json")
        return root


@dataclass
class StableDiffusionComponents(_Components):
    """Stable Diffusion 1.x parts, in eval mode, on one device."""

    tokenizer: Any
    text_encoder: Any
    unet: Any
    vae: Any
    scheduler: Any

    _pipeline = "StableDiffusionPipeline"
    _absent = {
        "safety_checker": [None, None],
        "feature_extractor": [None, None],
        "image_encoder": [None, None],
        "requires_safety_checker": False,
    }


@dataclass
class StableVideoDiffusionComponents(_Components):
    """Stable Video Diffusion (image-to-video) parts, in eval mode, on one device."""

    image_encoder: Any
    feature_extractor: Any
    unet: Any
    vae: Any
    scheduler: Any

    _pipeline = "StableVideoDiffusionPipeline"
    _absent = {}


# The parts each bundle holds, i.e. the subfolders of its diffusers layout.
SD_COMPONENTS = tuple(f.name for f in fields(StableDiffusionComponents))
SVD_COMPONENTS = tuple(f.name for f in fields(StableVideoDiffusionComponents))


class DeferredComponents:
    """Components given now, or a function returning them, called on first use: a generator
    whose videos all come from the cache never loads its model.

    A model pool's loader (``ModelPool.loader``, marked ``pooled``) is called on every use
    and its result never kept here: the pool owns the model, so releasing the pool's models
    frees them.
    """

    def __init__(self, components: Any) -> None:
        deferred = callable(components) and not hasattr(components, "unet")
        self._loader: Callable[[], Any] | None = components if deferred else None
        self._pooled = deferred and getattr(components, "pooled", False)
        self._kept = None if deferred else components

    @property
    def loaded(self) -> Any:
        """The components if given or already loaded here, else None (never loads)."""
        return self._kept

    def get(self) -> Any:
        if self._pooled:
            assert self._loader is not None  # pooled components are always deferred
            return self._loader()
        if self._loader is not None:
            self._kept, self._loader = self._loader(), None
        return self._kept
