"""The methods' generator fixtures, installed with the package (pytest11 entry point
``ablation-methods``): any project's studies can ask for ``zs2`` or ``exvideo``.

Each fixture takes the profile's models from ``ablation_models`` (loaded once per worker)
and returns a generator for ``ablation.run``. A project overrides one by defining a fixture
of the same name in its own ``conftest.py`` (e.g. ``exvideo_recipe`` for another tuning
budget). The plugin core imports none of this: the methods register themselves.
"""

import pytest


# -- ExVideo ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def exvideo_recipe(ablation_profile):
    """The post-tuning budget every ExVideo variant gets on this profile (same data, seed)."""
    from pytest_ablation.methods.exvideo import STANDARD_RECIPE, TINY_RECIPE, TOY_RECIPE

    return {"tiny": TINY_RECIPE, "toy": TOY_RECIPE}.get(ablation_profile.name, STANDARD_RECIPE)


@pytest.fixture(scope="session")
def exvideo(ablation_models, ablation_cache, exvideo_recipe, ablation_profile):
    """Post-tuned ExVideo variants of the profile's SVD ("svd" role), tuned weights cached.

    The model loads on the first video or tuning actually computed. ``exvideo.long_video``
    holds the settings the studies sample at: the recipe's ``max_frames`` (past 25), and on
    ``tiny`` and ``toy`` the recipe's small clip size too, to keep the studies fast on a CPU.
    """
    from pytest_ablation.methods.exvideo import ExVideoVariants

    long_video = {"frames": exvideo_recipe.max_frames}
    sampler_options = {}
    if ablation_profile.name in ("tiny", "toy"):
        long_video.update(height=exvideo_recipe.height, width=exvideo_recipe.width)
    if ablation_profile.name == "toy":
        # Condition on the kind of first frame the toy image-to-video model was trained on.
        from pytest_ablation.toyworld.data import condition_image

        sampler_options["image_source"] = condition_image
    return ExVideoVariants(
        lambda: ablation_models.get("svd"),
        recipe=exvideo_recipe,
        model_identity=ablation_models.identity("svd"),
        store=ablation_cache,
        long_video=long_video,
        sampler_options=sampler_options,
    )


# -- ZS² ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def zs2(ablation_models):
    """ZS² text-to-video sampler on the profile's Stable Diffusion ("sd" role).

    The model loads on the first video actually generated, so a run served from the cache
    loads nothing.
    """
    from pytest_ablation.methods.zs2 import ZS2Sampler

    return ZS2Sampler(
        lambda: ablation_models.get("sd"),
        model_identity=ablation_models.identity("sd"),
    )
