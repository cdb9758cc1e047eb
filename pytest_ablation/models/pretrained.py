"""Reading pipeline parts with ``from_pretrained`` from a hub id or a local folder in the
diffusers layout, and finding local weights on this machine."""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable, Mapping
from typing import Any

from pytest_ablation.models.components import (
    StableDiffusionComponents,
    StableVideoDiffusionComponents,
)
from pytest_ablation.profiles import ProfileError
from pytest_ablation.profiles.spec import thaw

# Each part of a bundle: (library, class, how it is read). "config" parts carry no weights
# (tokenizers, processors), "weights" parts are transformers models, "diffusers" parts
# diffusers models (read in the role's dtype), and "scheduler" the configured scheduler.
SD_PARTS: dict[str, tuple[str, str, str]] = {
    "tokenizer": ("transformers", "CLIPTokenizer", "config"),
    "text_encoder": ("transformers", "CLIPTextModel", "weights"),
    "unet": ("diffusers", "UNet2DConditionModel", "diffusers"),
    "vae": ("diffusers", "AutoencoderKL", "diffusers"),
    "scheduler": ("diffusers", "DDIMScheduler", "scheduler"),
}
SVD_PARTS: dict[str, tuple[str, str, str]] = {
    "image_encoder": ("transformers", "CLIPVisionModelWithProjection", "weights"),
    "feature_extractor": ("transformers", "CLIPImageProcessor", "config"),
    "unet": ("diffusers", "UNetSpatioTemporalConditionModel", "diffusers"),
    "vae": ("diffusers", "AutoencoderKLTemporalDecoder", "diffusers"),
    "scheduler": ("diffusers", "EulerDiscreteScheduler", "scheduler"),
}


def local_path(source: str | None, local: str = "any") -> str | None:
    """The absolute path `source` names on this machine, or None for a hub id or a tag.

    ``local`` is what the kind reads locally (`ModelKind.local`): open_clip sources are local
    only as files and diffusers sources only as folders, so a folder that happens to be called
    "openai" never shadows the pretrained tag.
    """
    if source is None or local == "never":
        return None
    expanded = os.path.expanduser(source)
    if local == "file":
        found = os.path.isfile(expanded)
    elif local == "folder":
        found = os.path.isdir(expanded)
    else:
        found = os.path.exists(expanded)
    return os.path.realpath(expanded) if found else None


def verified(path: str | None) -> str | None:
    """``path``, after checking its weight files when it lies in a folder tree with a
    pytest-ablation weights manifest (the toy world's shipped weights have one): a changed
    or missing file fails here, naming the file, instead of loading quietly wrong weights."""
    if path is not None:
        from pytest_ablation.models.manifest import verify_if_listed

        verify_if_listed(path)
    return path


def weights_source(source: str, local: str) -> str:
    """What to read a role's weights from: the verified local path, or the hub id as given."""
    return verified(local_path(source, local)) or source


def torch_dtype(name: str | None) -> Any:
    import torch

    table = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    return table[name or "float32"]


def video_vae_dtype(vae: Any, dtype: Any) -> Any:
    """The dtype the image-to-video VAE runs in: float32 when it asks to be upcast.

    diffusers' Stable Video Diffusion pipeline decodes (and encodes the condition) in float32
    whenever the VAE is float16 and its config says ``force_upcast`` (SVD's does): float16
    overflows in its decoder. Stable Diffusion 1.x's pipeline keeps its VAE in float16.
    """
    import torch

    if dtype == torch.float16 and getattr(vae.config, "force_upcast", False):
        return torch.float32
    return dtype


def _pretrained_kwargs(options: Mapping[str, Any], how: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {key: options[key] for key in ("revision", "local_files_only") if key in options}
    if how in ("weights", "diffusers") and "variant" in options:
        kwargs["variant"] = options["variant"]
    if how == "diffusers":
        # diffusers models load in the role's dtype, which keeps their float32-only modules
        # in float32.
        kwargs["torch_dtype"] = torch_dtype(options.get("dtype"))
        if importlib.util.find_spec("accelerate") is None:
            # What diffusers falls back to anyway, minus a warning per component.
            kwargs["low_cpu_mem_usage"] = False
    return kwargs


def _scheduler(source: str, subfolder: str, options: Mapping[str, Any], default: str, where: str) -> Any:
    import diffusers

    name = options.get("scheduler", default)
    cls = getattr(diffusers, name, None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
        raise ProfileError(f"{where}.scheduler: {name!r} is not a diffusers scheduler class")
    config = cls.load_config(source, subfolder=subfolder, **_pretrained_kwargs(options, "config"))
    return cls.from_config(config, **thaw(options.get("scheduler_config", {})))


def _on_device(model: Any, device: str, options: Mapping[str, Any], how: str) -> Any:
    if how == "diffusers":
        model.to(device)  # already in its dtype (see _pretrained_kwargs)
    else:
        model.to(device=device, dtype=torch_dtype(options.get("dtype")))
    model.eval()
    model.requires_grad_(False)
    return model


def _load_part(
    part: str, spec: tuple[str, str, str], source: str, folder: str, options: Mapping[str, Any], device: str, where: str
) -> Any:
    library, class_name, how = spec
    if how == "scheduler":
        return _scheduler(source, folder, options, class_name, where)
    cls = getattr(importlib.import_module(library), class_name)
    loaded = cls.from_pretrained(source, subfolder=folder, **_pretrained_kwargs(options, how))
    if how == "config":
        return loaded
    model = _on_device(loaded, device, options, how)
    if part == "vae" and class_name == "AutoencoderKLTemporalDecoder":
        model = model.to(video_vae_dtype(model, model.dtype))
    return model


def _load_bundle(
    bundle: Callable[..., Any],
    parts: Mapping[str, tuple[str, str, str]],
    source: str,
    options: Mapping[str, Any],
    device: str,
    where: str,
) -> Any:
    folders = {name: name for name in parts}
    folders.update(options.get("subfolders", {}))
    return bundle(
        **{name: _load_part(name, spec, source, folders[name], options, device, where) for name, spec in parts.items()}
    )


def load_stable_diffusion(
    source: str, options: Mapping[str, Any], device: str, where: str = "models.sd"
) -> StableDiffusionComponents:
    return _load_bundle(StableDiffusionComponents, SD_PARTS, source, options, device, where)


def load_stable_video_diffusion(
    source: str, options: Mapping[str, Any], device: str, where: str = "models.svd"
) -> StableVideoDiffusionComponents:
    return _load_bundle(StableVideoDiffusionComponents, SVD_PARTS, source, options, device, where)


def resolve_callable(source: str, where: str = "source") -> Callable[..., Any]:
    """The function a 'package.module:function' string names, or ProfileError naming it."""
    module_name, _, attribute = source.partition(":")
    if not module_name or not attribute:
        raise ProfileError(f"{where}: got {source!r}; expected 'package.module:function'")
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only a missing named module is the profile's fault; a missing import inside it
        # is the module's, and keeps its own traceback.
        if exc.name is not None and (exc.name == module_name or module_name.startswith(exc.name + ".")):
            raise ProfileError(f"{where}: {source!r} names module {module_name!r}, which cannot be found") from exc
        raise
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ProfileError(f"{where}: {source!r}: module {module_name!r} has no attribute {attribute!r}") from None
    if not callable(target):
        raise ProfileError(f"{where}: {source!r} is not callable")
    return target
