"""Post-tuned ExVideo variants as one generator: what the two ExVideo studies sample from.

A variant is how the UNet was post-tuned and how it samples, both given in the request's
configuration (``ablation.run(exvideo, position="static", identity_conv=False)``):

- ``position`` / ``identity_conv``: how it samples (default ``"trainable"`` / ``True``);
- ``tuned_with``: a dict overriding ``position`` and/or ``identity_conv`` for the
  post-tuning only, e.g. ``{"identity_conv": True}`` with ``identity_conv=False`` removes the
  convolution from a model tuned with it (an inference-time ablation);
- ``tuned``: ``False`` samples the extended UNet as initialised, without post-tuning;
- ``tuned_from``: the UNet post-tuning starts from: ``"model"`` (default), the profile's
  ``svd`` model as loaded; ``"svd"``, plain SVD: the ``base`` components (the ``svd_base``
  role on a profile whose ``svd`` is already ExVideo-tuned, as ExSVD is), the same model
  where the profile's ``svd`` is plain SVD. A training-time ablation tunes every arm from
  SVD; an inference-time one changes a model tuned with the part.

Every variant is post-tuned with the same ``TuningRecipe`` (budget, clips, seed), in
``recipe.tuning_runs`` independent runs (seeds ``seed``, ``seed + 1``, ...: each run draws
its own clips, noise levels and noise); a sample of seed index ``k`` is drawn from run
``k mod tuning_runs``, so a study that samples ``tuning_runs`` seeds and takes the seed as
its unit (``@pytest.mark.ablation(..., unit="seed")``) has the tuning run as its unit. The
tuned weights are kept in ``store`` (``store.tensors(key, compute)``, e.g. the plugin's
cache) under a digest of the recipe, the run's seed, the tuning configuration, the base
model's identity and this code, so each configuration's run is tuned once and reused by
every variant, test and worker that needs it.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast
from collections.abc import Callable, Mapping

import torch

from pytest_ablation.run.keys import source_digest
from pytest_ablation.models.components import DeferredComponents

from .positions import check_frames, check_position

if TYPE_CHECKING:
    from .sampler import ExVideoSampler

# The parts that import diffusers load on first use: a run served from the cache needs only
# this generator's identity.
_PARTS = ("conditioning", "data", "positions", "sampler", "temporal", "tuning")

VERSION = "1"
# Where post-tuning clips come from: the built-in moving-shapes scenes, or a function named
# 'package.module:function' called as ``function(clips, frames, height, width, seed=seed)``
# that returns (clips, frames, 3, height, width) in [0, 1] (e.g. the toy world's scenes).
BUILTIN_SOURCE = "moving-shapes"
CONFIG_KEYS = ("position", "identity_conv", "tuned_with", "tuned", "tuned_from")
TUNED_FROM = ("model", "svd")
_LOSSES = "__tuning__.losses"
# How far post-tuning moved each new part: ||tuned - initial|| / ||initial|| (Frobenius),
# averaged over the UNet's temporal transformers, stored beside the weights.
_CHANGE = "__tuning__.change."
NEW_PARTS = {"table": "time_proj.embeddings", "conv": "position_conv.weight"}
# The recipe field holding each new part's own learning rate.
_PART_RATE_FIELDS = {part: f"{part}_lr" for part in NEW_PARTS}


def _code_digest(recipe: TuningRecipe) -> str | None:
    """The code that decides a tuned variant's videos, its clip source's included."""
    modules = [f"{__package__}.{part}" for part in _PARTS] + [__name__]
    if recipe.source != BUILTIN_SOURCE:
        modules.append(recipe.source.partition(":")[0])
    return source_digest(*modules)


def clip_source(name: str) -> Callable[..., torch.Tensor]:
    """The function a recipe's ``source`` names (not the built-in moving shapes)."""
    from pytest_ablation.models.pretrained import resolve_callable

    return resolve_callable(name, "source")


def _named(value: Any) -> Any:
    """A sampler option as a cache key sees it: a function (an ``image_source``) by its name."""
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
    return value


@dataclass(frozen=True)
class TuningRecipe:
    """One post-tuning budget, shared by every variant of a study.

    ``clips`` moving-shapes clips of ``frames`` frames at ``height`` x ``width``;
    ``steps`` AdamW steps of ``batch_size`` clips at learning rate ``lr``; the UNet is
    extended to ``max_frames`` (the longest video it may then sample). Each configuration
    is tuned ``tuning_runs`` times, run ``i`` with seed ``seed + i``.

    Adam moves each parameter by about ``lr`` per step whatever the gradient's scale, so
    ``budget`` (``steps * lr``) bounds how far post-tuning can take a parameter from where
    it started: a new part (the table, the convolution) that should move from its
    initialisation needs a budget well above its entries' scale. ``table_lr`` and
    ``conv_lr`` give those two parts their own rates (``part_budget``); unset, they train
    at ``lr`` like the rest.
    """

    steps: int
    clips: int
    frames: int
    height: int
    width: int
    max_frames: int
    lr: float = 1e-5
    batch_size: int = 1
    seed: int = 0
    gradient_checkpointing: bool = False
    source: str = "moving-shapes"
    tuning_runs: int = 1
    table_lr: float | None = None
    conv_lr: float | None = None

    def __post_init__(self) -> None:
        for name in ("clips", "frames", "height", "width", "max_frames", "batch_size", "tuning_runs"):
            check_frames(getattr(self, name), name)
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"steps: got {self.steps!r}; expected an integer >= 0")
        if self.frames > self.max_frames:
            raise ValueError(f"frames: got {self.frames}; the recipe's max_frames is {self.max_frames}")
        if self.height % 8 or self.width % 8:
            raise ValueError(f"height, width: got {self.height}x{self.width}; expected multiples of 8")
        for name in ("lr", *_PART_RATE_FIELDS.values()):
            value = getattr(self, name)
            if name != "lr" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name}: got {value!r}; expected a number > 0")
        if not isinstance(self.source, str) or (self.source != BUILTIN_SOURCE and ":" not in self.source):
            raise ValueError(f"source: got {self.source!r}; expected {BUILTIN_SOURCE!r} or 'package.module:function'")

    def to_dict(self) -> dict:
        # A part rate left unset is not written, so a recipe without them keeps the digest
        # (and the cached tuning runs) it had before the part rates existed.
        return {k: v for k, v in asdict(self).items() if not (k in _PART_RATE_FIELDS.values() and v is None)}

    @property
    def part_lr(self) -> dict[str, float]:
        """The new parts' own learning rates (``post_tune``'s ``part_lr``); unset ones
        train at ``lr``."""
        rates = {part: getattr(self, name) for part, name in _PART_RATE_FIELDS.items()}
        return {part: rate for part, rate in rates.items() if rate is not None}

    @property
    def budget(self) -> float:
        """``steps * lr``: about the furthest Adam can move one parameter."""
        return self.steps * self.lr

    def part_budget(self, part: str) -> float:
        """``steps`` times the learning rate of new part ``part`` (``"table"`` or ``"conv"``)."""
        if part not in NEW_PARTS:
            raise ValueError(f"part: got {part!r}; expected one of {', '.join(NEW_PARTS)}")
        return self.steps * self.part_lr.get(part, self.lr)

    def run_seed(self, run: int) -> int:
        """The seed of tuning run ``run`` (0-based)."""
        if isinstance(run, bool) or not isinstance(run, int) or not 0 <= run < self.tuning_runs:
            raise ValueError(f"run: got {run!r}; the recipe has tuning runs 0..{self.tuning_runs - 1}")
        return self.seed + run

    def run_of(self, seed_index: int) -> int:
        """The tuning run a sample of seed index ``seed_index`` is drawn from."""
        return int(seed_index) % self.tuning_runs

    def run_dict(self, run: int) -> dict:
        """What decides one run's tuned weights: the recipe, with the run's own seed and
        without the number of runs (adding runs keeps the ones already tuned)."""
        fields_ = {k: v for k, v in self.to_dict().items() if k != "tuning_runs"}
        fields_["seed"] = self.run_seed(run)
        return fields_


@dataclass(frozen=True)
class Variant:
    position: str
    identity_conv: bool
    tuned_position: str
    tuned_identity_conv: bool
    tuned: bool
    tuned_from: str = "model"

    @property
    def tuning(self) -> tuple[str, bool] | None:
        return (self.tuned_position, self.tuned_identity_conv) if self.tuned else None


def parse_config(config: Mapping[str, Any]) -> Variant:
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(
            f"ExVideo variant: unknown configuration {', '.join(map(repr, unknown))}; allowed: {', '.join(CONFIG_KEYS)}"
        )
    position = check_position(config.get("position", "trainable"))
    identity_conv = config.get("identity_conv", True)
    tuned = config.get("tuned", True)
    for name, value in (("identity_conv", identity_conv), ("tuned", tuned)):
        if not isinstance(value, bool):
            raise ValueError(f"{name}: got {value!r}; expected True or False")
    tuned_with = config.get("tuned_with") or {}
    if not isinstance(tuned_with, Mapping) or set(tuned_with) - {"position", "identity_conv"}:
        raise ValueError(f"tuned_with: got {tuned_with!r}; expected a dict with 'position' and/or 'identity_conv'")
    if tuned_with and not tuned:
        raise ValueError("tuned_with: given with tuned=False; an untuned variant has no tuning configuration")
    tuned_from = config.get("tuned_from", "model")
    if tuned_from not in TUNED_FROM:
        raise ValueError(f"tuned_from: got {tuned_from!r}; expected one of {', '.join(map(repr, TUNED_FROM))}")
    tuned_position = check_position(tuned_with.get("position", position))
    tuned_conv = tuned_with.get("identity_conv", identity_conv)
    if not isinstance(tuned_conv, bool):
        raise ValueError(f"tuned_with.identity_conv: got {tuned_conv!r}; expected True or False")
    return Variant(position, identity_conv, tuned_position, tuned_conv, tuned, tuned_from)


class ExVideoVariants:
    """The studies' generator: post-tunes (or loads) a configuration, then samples it.

    ``components``: SVD components, or a function returning them (called on first use, so a
    run served from the cache never loads a model). ``model_identity`` names the base
    weights in cache keys. ``base`` / ``base_identity``: plain SVD components (or a function
    returning them) and their identity, which ``tuned_from="svd"`` variants start from; by
    default ``components`` themselves. ``long_video`` holds the settings the studies sample
    long videos at on this profile (e.g. ``{"frames": 32}``); ``sampler_options`` go to
    ``ExVideoSampler``.
    """

    def __init__(
        self,
        components: Any | Callable[[], Any],
        *,
        recipe: TuningRecipe,
        model_identity: Mapping[str, Any] | None = None,
        store: Any = None,
        long_video: Mapping[str, Any] | None = None,
        sampler_options: Mapping[str, Any] | None = None,
        base: Any | Callable[[], Any] | None = None,
        base_identity: Mapping[str, Any] | None = None,
    ):
        self._components = DeferredComponents(components)
        self._base = DeferredComponents(base) if base is not None else None
        self.recipe = recipe
        self.model_identity = dict(model_identity) if model_identity is not None else None
        if base is not None and base_identity is None:
            raise ValueError("base_identity: required with base (it names the SVD weights tuning starts from)")
        self.base_identity = dict(base_identity) if base_identity is not None else self.model_identity
        self.store = store
        self.long_video = dict(long_video or {"frames": recipe.max_frames})
        self.sampler_options = dict(sampler_options or {})
        self.tuning_results: dict[str, dict] = {}
        self._lock = threading.RLock()
        self._data: dict[int, Any] = {}
        self._weights: dict[str, dict] = {}
        self._unet_key: tuple[tuple[str, bool] | None, str, int, str, bool] | None = None
        self._unet: torch.nn.Module | None = None

    @property
    def components(self) -> Any:
        with self._lock:
            return self._components.get()

    def release(self) -> None:
        """Drop everything derived from the model (the working UNet copy, encoded tuning
        data, tuned weights): called when the model pool releases its models, so that
        memory is really freed. Each is made again from the store or the model on next use."""
        with self._lock:
            self._unet = self._unet_key = None
            self._data.clear()
            self._weights = {}

    def _start(self, tuned_from: str) -> tuple[Any, Mapping[str, Any] | None]:
        """The components a variant's UNet starts from, and their identity."""
        if tuned_from == "svd" and self._base is not None:
            return self._base.get(), self.base_identity
        return self.components, self.model_identity

    # -- the generator protocol ---------------------------------------------------------
    def cache_identity(self) -> dict:
        models = {"svd": self.model_identity}
        if self.base_identity != self.model_identity:
            models["svd_base"] = self.base_identity
        return {
            "method": "exvideo",
            "version": VERSION,
            "source": _code_digest(self.recipe),
            "models": models,
            "recipe": self.recipe.to_dict(),
            "sampler": {name: _named(value) for name, value in self.sampler_options.items()},
        }

    def generate(self, request: Any):
        return self.generate_batch([request])[0]

    def generate_batch(self, requests: list) -> list:
        """The videos of several requests of one variant, through one UNet pass per step for
        the requests drawn from one tuning run."""
        config = dict(getattr(requests[0], "config", None) or {})
        if any(dict(getattr(r, "config", None) or {}) != config for r in requests[1:]):
            raise ValueError("ExVideoVariants.generate_batch: a batch holds one variant's requests")
        variant = parse_config(config)
        if requests[0].frames > self.recipe.max_frames:
            raise ValueError(
                f"frames: got {requests[0].frames}; the variants are extended to "
                f"max_frames={self.recipe.max_frames} (the tuning recipe's)"
            )
        groups: dict[int, list[int]] = {}
        for i, request in enumerate(requests):
            # A request without a seed index (outside a study) samples the first run.
            run = self.recipe.run_of(getattr(request, "seed_index", None) or 0) if variant.tuned else 0
            groups.setdefault(run, []).append(i)
        outputs: list = [None] * len(requests)
        from .sampler import ExVideoSampler

        for run, members in groups.items():
            with self._lock:
                unet = self.unet_for(variant, run)
                sampler = ExVideoSampler(self.components, unet, **self.sampler_options)
                done = sampler.sample_batch([requests[i] for i in members])
            if variant.tuned:
                assert variant.tuning is not None  # a tuned variant has one
                key = self.tuning_key(*variant.tuning, run=run, tuned_from=variant.tuned_from)
                results = self.tuning_results.get(key, {})
                info = {"key": key[:16], "run": run, "seed": self.recipe.run_seed(run), **results}
                # Per variant in the report's generator details: how far tuning moved the
                # new parts (a conv remade rather than adapted shows here).
                moved = {f"tuned_{part}_change": value for part, value in results.get("change", {}).items()}
                for out in done:
                    out.info["tuning"] = info
                    if moved:
                        out.info["details"] = {**(out.info.get("details") or {}), **moved}
            for i, out in zip(members, done):
                outputs[i] = out
        return outputs

    # -- tuning -------------------------------------------------------------------------
    def tuning_key(self, position: str, identity_conv: bool, run: int = 0, tuned_from: str = "model") -> str:
        from pytest_ablation.run.keys import digest

        # By identity alone: a key never loads a model. Where the profile's model is plain
        # SVD the two starts are one model, and share their tuned weights.
        identity = self.base_identity if tuned_from == "svd" else self.model_identity
        return digest(
            {
                "what": "exvideo-tuned-weights",
                "version": VERSION,
                "source": _code_digest(self.recipe),
                "base": identity,
                "recipe": self.recipe.run_dict(run),
                "position": position,
                "identity_conv": identity_conv,
            }
        )

    def tuned_weights(
        self, position: str, identity_conv: bool, run: int = 0, tuned_from: str = "model"
    ) -> dict[str, torch.Tensor]:
        """The post-tuned ExVideo state dict of a configuration's run, from the store if there."""
        key = self.tuning_key(check_position(position), identity_conv, run, tuned_from)
        with self._lock:
            if key not in self._weights:
                compute = lambda: self._tune(position, identity_conv, run, tuned_from)  # noqa: E731
                stored = self.store.tensors(key, compute) if self.store is not None else compute()
                weights = dict(stored)
                losses = weights.pop(_LOSSES, None)
                change = {
                    name[len(_CHANGE) :]: round(float(weights.pop(name)), 6)
                    for name in [n for n in weights if n.startswith(_CHANGE)]
                }
                if losses is not None and key not in self.tuning_results:
                    self.tuning_results[key] = {"losses": [round(float(v), 6) for v in losses]}
                if change:
                    self.tuning_results.setdefault(key, {})["change"] = change
                # One configuration's weights at a time: ExSVD's tuned part is 1.7 GB.
                self._weights = {key: weights}
            return self._weights[key]

    def _tuning_data(self, run: int = 0):
        if run not in self._data:
            r = self.recipe
            seed = r.run_seed(run)
            from .data import moving_shapes
            from .tuning import encode_videos

            if r.source != BUILTIN_SOURCE:
                clips = clip_source(r.source)(r.clips, r.frames, r.height, r.width, seed=seed)
            else:
                clips = moving_shapes(
                    r.clips, r.frames, r.height, r.width, generator=torch.Generator().manual_seed(seed)
                )
            # The frozen encoders are the profile model's, whichever UNet the run tunes: the
            # exsvd kind shares them with SVD-XT. Every run's latents are kept (a study tunes
            # the runs of one arm in turn, then of the next): they are small next to a UNet.
            self._data[run] = encode_videos(self.components, clips, generator=torch.Generator().manual_seed(seed + 1))
        return self._data[run]

    def _tune(
        self, position: str, identity_conv: bool, run: int = 0, tuned_from: str = "model"
    ) -> dict[str, torch.Tensor]:
        from .temporal import exvideo_state_dict, extend_unet
        from .tuning import post_tune

        r = self.recipe
        start, _ = self._start(tuned_from)
        unet = extend_unet(copy.deepcopy(start.unet), r.max_frames, position=position, identity_conv=identity_conv)
        initial = new_parts(exvideo_state_dict(unet))
        result = post_tune(
            unet,
            self._tuning_data(run),
            r.steps,
            components=self.components,
            lr=r.lr,
            part_lr=r.part_lr,
            batch_size=r.batch_size,
            generator=torch.Generator().manual_seed(r.run_seed(run) + 2),
            gradient_checkpointing=r.gradient_checkpointing,
        )
        weights = exvideo_state_dict(unet)
        change = relative_change(initial, new_parts(weights))
        weights[_LOSSES] = torch.tensor(result.losses, dtype=torch.float64)
        for part, value in change.items():
            weights[_CHANGE + part] = torch.tensor(value, dtype=torch.float64)
        self.tuning_results[self.tuning_key(position, identity_conv, run, tuned_from)] = {
            "losses": [round(v, 6) for v in result.losses],
            "seconds": round(result.seconds, 3),
            "frames_per_second": round(result.frames_per_second, 3),
            "change": {part: round(value, 6) for part, value in change.items()},
        }
        return weights

    # -- the UNet a variant samples with --------------------------------------------------
    def unet_for(self, variant: Variant, run: int = 0) -> torch.nn.Module:
        from .temporal import extend_unet, load_exvideo_state_dict

        run = run if variant.tuned else 0
        key = (variant.tuning, variant.tuned_from, run, variant.position, variant.identity_conv)
        with self._lock:
            if self._unet_key != key:
                self._unet = None  # one working copy at a time: the real UNet is large
                max_frames = self.recipe.max_frames
                start, _ = self._start(variant.tuned_from)
                if variant.tuned:
                    assert variant.tuning is not None  # a tuned variant has one
                    weights = self.tuned_weights(*variant.tuning, run, variant.tuned_from)
                    unet = extend_unet(
                        copy.deepcopy(start.unet),
                        max_frames,
                        position=variant.tuned_position,
                        identity_conv=variant.tuned_identity_conv,
                    )
                    load_exvideo_state_dict(unet, weights)
                    extend_unet(unet, max_frames, position=variant.position, identity_conv=variant.identity_conv)
                else:
                    unet = extend_unet(
                        copy.deepcopy(start.unet),
                        max_frames,
                        position=variant.position,
                        identity_conv=variant.identity_conv,
                    )
                unet.eval()
                unet.requires_grad_(False)
                self._unet, self._unet_key = unet, key
            # Set with its key: here, or by the call that made the key current.
            return cast(torch.nn.Module, self._unet)

    def sampler(self, run: int = 0, **config: Any) -> ExVideoSampler:
        """An ``ExVideoSampler`` on the UNet of a variant (configured like ``request.config``),
        post-tuned by tuning run ``run``."""
        from .sampler import ExVideoSampler

        return ExVideoSampler(self.components, self.unet_for(parse_config(config), run), **self.sampler_options)


def new_parts(weights: Mapping[str, torch.Tensor]) -> dict[str, list[torch.Tensor]]:
    """ExVideo's new parts in a state dict, by kind (``NEW_PARTS``), in name order."""
    return {
        part: [weights[n] for n in sorted(weights) if n.endswith(suffix)]
        for part, suffix in NEW_PARTS.items()
        if any(n.endswith(suffix) for n in weights)
    }


def relative_change(initial: Mapping[str, list], tuned: Mapping[str, list]) -> dict[str, float]:
    """Per kind of new part: ``||tuned - initial|| / ||initial||`` (Frobenius), averaged over
    its layers. The identity convolution starts at norm sqrt(channels), the table at its
    sinusoid rows: 0.5 means the part moved by half its own size."""
    change = {}
    for part, before in initial.items():
        ratios = [
            float((after.double() - first.double()).norm() / first.double().norm())
            for first, after in zip(before, tuned[part], strict=True)
        ]
        change[part] = sum(ratios) / len(ratios)
    return change


# ExVideo's recipe (gradient checkpointing, 128 frames) at a demonstration budget for one
# GPU: the recipe of a profile that sets none (``[methods.exvideo] recipe``). ExVideo trains
# at lr 1e-5 for far longer; here 500 steps at 2e-4 give the budget steps x lr = 0.1 (Adam
# moves a parameter by about lr per step), so that the new parts can leave their
# initialisation, in three tuning runs (the studies' unit).
STANDARD_RECIPE = TuningRecipe(
    steps=500,
    clips=8,
    frames=128,
    height=256,
    width=256,
    max_frames=128,
    lr=2e-4,
    gradient_checkpointing=True,
    tuning_runs=3,
)
