"""What a profile sets for ExVideo (``[methods.exvideo]``): the post-tuning recipe, the size
long videos are sampled at, and where condition images come from.

    [methods.exvideo]
    recipe = { steps = 40, clips = 8, frames = 32, height = 32, width = 32, max_frames = 32, lr = 2.5e-3, tuning_runs = 3 }
    sample_at_recipe_size = true        # long videos at the recipe's clip size
    condition_images = "package.module:function"   # function(height, width, generator=...)

A profile that sets nothing gets ExVideo's own recipe (`STANDARD_RECIPE`), sampled at the
profile's settings, conditioned on the built-in scene images. ``max_frames`` is the length
the studies sample: it should go well past the SVD's trained length (its UNet's
``config.num_frames``), where the position kinds differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ...suggest import did_you_mean
from .variants import STANDARD_RECIPE, TuningRecipe

OPTIONS = ("recipe", "sample_at_recipe_size", "condition_images")


@dataclass(frozen=True)
class ExVideoOnProfile:
    recipe: TuningRecipe
    long_video: dict[str, Any]
    sampler_options: dict[str, Any] = field(default_factory=dict)


def _whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# Recipe fields TuningRecipe takes as they come: checked here, when the profile is read, so
# that `seed = "abc"` fails before any model loads and `gradient_checkpointing = "no"` is
# not taken as true. (check, what is allowed)
_RECIPE_TYPES = {
    "seed": (_whole_number, "a whole number >= 0 (TOML integer)"),
    "gradient_checkpointing": (lambda v: isinstance(v, bool), "true or false (TOML booleans, unquoted)"),
}


def _recipe(value: Any) -> TuningRecipe:
    names = [f.name for f in fields(TuningRecipe)]
    if not isinstance(value, dict):
        raise ValueError(f"methods.exvideo.recipe: got {value!r}; expected a table of {', '.join(names)}")
    for key in value:
        if key not in names:
            raise ValueError(
                f"methods.exvideo.recipe.{key}: unknown field; {did_you_mean(key, names)}the "
                f"fields are: {', '.join(names)}"
            )
    for name, (check, allowed) in _RECIPE_TYPES.items():
        if name in value and not check(value[name]):
            raise ValueError(f"methods.exvideo.recipe.{name}: got {value[name]!r}; expected {allowed}")
    try:
        return TuningRecipe(**value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"methods.exvideo.recipe: {exc}") from None


def exvideo_on_profile(profile: Any) -> ExVideoOnProfile:
    """ExVideo's recipe and sampling options on ``profile``; ValueError naming a bad key."""
    options = profile.method_options("exvideo")
    for key in options:
        if key not in OPTIONS:
            raise ValueError(
                f"methods.exvideo.{key}: unknown option; {did_you_mean(key, OPTIONS)}the options "
                f"are: {', '.join(OPTIONS)}"
            )
    recipe = _recipe(options["recipe"]) if "recipe" in options else STANDARD_RECIPE
    long_video: dict[str, Any] = {"frames": recipe.max_frames}
    at_recipe_size = options.get("sample_at_recipe_size", False)
    if not isinstance(at_recipe_size, bool):
        raise ValueError(
            f"methods.exvideo.sample_at_recipe_size: got {at_recipe_size!r}; expected true or "
            "false (TOML booleans, unquoted)"
        )
    if at_recipe_size:
        long_video.update(height=recipe.height, width=recipe.width)
    sampler_options = {}
    if "condition_images" in options:
        from pytest_ablation.models.pretrained import resolve_callable

        sampler_options["image_source"] = resolve_callable(
            str(options["condition_images"]), "methods.exvideo.condition_images"
        )
    return ExVideoOnProfile(recipe, long_video, sampler_options)
