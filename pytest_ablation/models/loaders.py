"""Turning a ModelSpec into live objects on a device: pretrained folders, hub ids, open_clip,
tiny in-process models and user callables."""

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
from pytest_ablation.profiles import ModelSpec, ProfileError
from pytest_ablation.profiles.spec import SD_COMPONENTS, SVD_COMPONENTS, thaw

TINY_OPEN_CLIP = "pytest-ablation-tiny"


def local_path(source: str | None, kind: str | None = None) -> str | None:
    """The absolute path `source` names on this machine, or None for a hub id or a tag.

    open_clip sources are local only as files and diffusers sources only as folders, so a
    folder that happens to be called "openai" never shadows the pretrained tag.
    """
    if source is None:
        return None
    expanded = os.path.expanduser(source)
    if kind == "open-clip":
        found = os.path.isfile(expanded)
    elif kind in ("stable-diffusion", "stable-video-diffusion"):
        found = os.path.isdir(expanded)
    else:
        found = os.path.exists(expanded)
    return os.path.realpath(expanded) if found else None


def verified(path: str | None) -> str | None:
    """``path``, after checking its weight files when it lies in a folder tree with a
    pytest-ablation weights manifest (the toy world's shipped weights have one): a changed
    or missing file fails here, naming the file, instead of loading quietly wrong weights."""
    if path is not None:
        from pytest_ablation.toyworld.weights import verify_if_listed

        verify_if_listed(path)
    return path


def _pretrained_kwargs(options: Mapping[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if "revision" in options:
        kwargs["revision"] = options["revision"]
    if "local_files_only" in options:
        kwargs["local_files_only"] = options["local_files_only"]
    return kwargs


def _scheduler(
    source: str, subfolder: str, options: Mapping[str, Any], default: str, where: str
) -> Any:
    import diffusers

    name = options.get("scheduler", default)
    cls = getattr(diffusers, name, None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
        raise ProfileError(f"{where}.scheduler: {name!r} is not a diffusers scheduler class")
    config = cls.load_config(source, subfolder=subfolder, **_pretrained_kwargs(options))
    return cls.from_config(config, **thaw(options.get("scheduler_config", {})))


def _weights(model: Any, device: str, options: Mapping[str, Any]) -> Any:
    import torch

    from pytest_ablation.models.tiny import torch_dtype

    dtype = torch_dtype(options.get("dtype"))
    if isinstance(model, torch.nn.Module) and type(model).__module__.startswith("diffusers"):
        # diffusers models were loaded in `dtype` already (see _diffusers_kwargs), which
        # keeps their float32-only modules in float32.
        model.to(device)
    else:
        model.to(device=device, dtype=dtype)
    model.eval()
    model.requires_grad_(False)
    return model


def _video_vae(vae: Any) -> Any:
    from pytest_ablation.models.tiny import video_vae_dtype

    return vae.to(video_vae_dtype(vae, vae.dtype))


def _diffusers_kwargs(options: Mapping[str, Any]) -> dict[str, Any]:
    from pytest_ablation.models.tiny import torch_dtype

    kwargs = {**_model_kwargs(options), "torch_dtype": torch_dtype(options.get("dtype"))}
    if importlib.util.find_spec("accelerate") is None:
        # What diffusers falls back to anyway, minus a warning per component.
        kwargs["low_cpu_mem_usage"] = False
    return kwargs


def _model_kwargs(options: Mapping[str, Any]) -> dict[str, Any]:
    kwargs = _pretrained_kwargs(options)
    if "variant" in options:
        kwargs["variant"] = options["variant"]
    return kwargs


def load_stable_diffusion(
    source: str, options: Mapping[str, Any], device: str, where: str = "models.sd"
) -> StableDiffusionComponents:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    folders = {name: name for name in SD_COMPONENTS}
    folders.update(options.get("subfolders", {}))
    common = _pretrained_kwargs(options)
    weights = _model_kwargs(options)
    diffusers_weights = _diffusers_kwargs(options)
    return StableDiffusionComponents(
        tokenizer=CLIPTokenizer.from_pretrained(source, subfolder=folders["tokenizer"], **common),
        text_encoder=_weights(
            CLIPTextModel.from_pretrained(source, subfolder=folders["text_encoder"], **weights),
            device,
            options,
        ),
        unet=_weights(
            UNet2DConditionModel.from_pretrained(
                source, subfolder=folders["unet"], **diffusers_weights
            ),
            device,
            options,
        ),
        vae=_weights(
            AutoencoderKL.from_pretrained(source, subfolder=folders["vae"], **diffusers_weights),
            device,
            options,
        ),
        scheduler=_scheduler(source, folders["scheduler"], options, "DDIMScheduler", where),
    )


def load_stable_video_diffusion(
    source: str, options: Mapping[str, Any], device: str, where: str = "models.svd"
) -> StableVideoDiffusionComponents:
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    folders = {name: name for name in SVD_COMPONENTS}
    folders.update(options.get("subfolders", {}))
    common = _pretrained_kwargs(options)
    weights = _model_kwargs(options)
    diffusers_weights = _diffusers_kwargs(options)
    return StableVideoDiffusionComponents(
        image_encoder=_weights(
            CLIPVisionModelWithProjection.from_pretrained(
                source, subfolder=folders["image_encoder"], **weights
            ),
            device,
            options,
        ),
        feature_extractor=CLIPImageProcessor.from_pretrained(
            source, subfolder=folders["feature_extractor"], **common
        ),
        unet=_weights(
            UNetSpatioTemporalConditionModel.from_pretrained(
                source, subfolder=folders["unet"], **diffusers_weights
            ),
            device,
            options,
        ),
        vae=_video_vae(
            _weights(
                AutoencoderKLTemporalDecoder.from_pretrained(
                    source, subfolder=folders["vae"], **diffusers_weights
                ),
                device,
                options,
            )
        ),
        scheduler=_scheduler(
            source, folders["scheduler"], options, "EulerDiscreteScheduler", where
        ),
    )


def _clip_model_class() -> Any:
    try:
        from pytest_ablation.metrics import ClipModel
    except ImportError as exc:  # pragma: no cover - only while the metrics package is missing
        raise ProfileError(
            f"the CLIP judge needs pytest_ablation.metrics.ClipModel: {exc}"
        ) from exc
    return ClipModel


def load_open_clip(name: str, pretrained: str | None, device: str, seed: int) -> Any:
    ClipModel = _clip_model_class()
    if pretrained is not None:
        return ClipModel.from_open_clip(name, pretrained=pretrained, device=device)
    return ClipModel.from_open_clip(name, pretrained=None, device=device, seed=seed)


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
        if exc.name is not None and (
            exc.name == module_name or module_name.startswith(exc.name + ".")
        ):
            raise ProfileError(
                f"{where}: {source!r} names module {module_name!r}, which cannot be found"
            ) from exc
        raise
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ProfileError(
                f"{where}: {source!r}: module {module_name!r} has no attribute {attribute!r}"
            ) from None
    if not callable(target):
        raise ProfileError(f"{where}: {source!r} is not callable")
    return target


def load(spec: ModelSpec, device: str) -> Any:
    options = spec.options
    where = f"models.{spec.role}"
    if spec.kind == "tiny-stable-diffusion":
        from pytest_ablation.models.tiny import build_tiny_stable_diffusion

        return build_tiny_stable_diffusion(
            seed=options.get("seed", 0), device=device, dtype=options.get("dtype")
        )
    if spec.kind == "tiny-stable-video-diffusion":
        from pytest_ablation.models.tiny import build_tiny_stable_video_diffusion

        return build_tiny_stable_video_diffusion(
            seed=options.get("seed", 0),
            device=device,
            dtype=options.get("dtype"),
            num_frames=options.get("num_frames"),
        )
    if spec.kind == "tiny-open-clip":
        return load_open_clip(TINY_OPEN_CLIP, None, device, options.get("seed", 0))
    if spec.kind == "open-clip":
        pretrained = verified(local_path(spec.source, spec.kind)) or spec.source
        return load_open_clip(options["name"], pretrained, device, options.get("seed", 0))
    if spec.kind in ("stable-diffusion", "stable-video-diffusion"):
        source = verified(local_path(spec.source, spec.kind)) or spec.source
        loader = (
            load_stable_diffusion
            if spec.kind == "stable-diffusion"
            else load_stable_video_diffusion
        )
        return loader(source, options, device, where)
    if spec.kind == "exsvd":
        from pytest_ablation.methods.exvideo.loading import load_exsvd_components

        source = verified(local_path(spec.source, "stable-video-diffusion")) or spec.source
        return load_exsvd_components(source, thaw(options), device, where)
    if spec.kind == "callable":
        function = resolve_callable(spec.source, f"{where}.source")
        return function(device=device, **thaw(options))
    raise ProfileError(f"{where}.kind: no loader for kind {spec.kind!r}")  # pragma: no cover
