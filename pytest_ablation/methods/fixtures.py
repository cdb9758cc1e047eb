"""The methods' generator fixtures, installed with the package (pytest11 entry point
``ablation-methods``): any project's studies can ask for ``zs2`` or ``exvideo``.

Each fixture takes the profile's models from ``ablation_models`` (loaded once per worker)
and returns a generator for ``ablation.run``. A project overrides one by defining a fixture
of the same name in its own ``conftest.py`` (e.g. ``exvideo_recipe`` for another tuning
budget). The plugin core imports none of this: the methods register themselves.
"""

import pytest

from pytest_ablation.run.catalog import replicates


# The profile roles each of the methods' generator fixtures loads.
_MODEL_ROLES = {"zs2": ("sd",), "exvideo": ("svd", "svd_base")}


def pytest_ablation_model_roles(fixturename):
    return _MODEL_ROLES.get(fixturename)


def _tuning_runs(profile) -> int:
    from pytest_ablation.methods.exvideo import exvideo_on_profile as read

    return read(profile).recipe.tuning_runs


# -- ExVideo ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def exvideo_on_profile(ablation_profile):
    """What the profile sets for ExVideo (``[methods.exvideo]``): recipe, sampling size,
    condition images."""
    from pytest_ablation.methods.exvideo import exvideo_on_profile as read

    return read(ablation_profile)


@pytest.fixture(scope="session")
def exvideo_recipe(exvideo_on_profile):
    """The post-tuning budget every ExVideo variant gets on this profile (same data, seed):
    the profile's ``[methods.exvideo] recipe``, else ``STANDARD_RECIPE``."""
    return exvideo_on_profile.recipe


@pytest.fixture(scope="session")
@replicates("seed", count=_tuning_runs)
def exvideo(ablation_models, ablation_cache, exvideo_recipe, exvideo_on_profile):
    """Post-tuned ExVideo variants of the profile's SVD ("svd" role), tuned weights cached.

    Each of the recipe's ``tuning_runs`` is one replicate: seed index k samples tuning run k,
    so a study of ``exvideo`` takes the seed as its unit (``unit="seed"``) and, leaving
    ``seeds`` unset, samples every run the profile tunes.

    The model loads on the first video or tuning actually computed. ``exvideo.long_video``
    holds the settings the studies sample at: the recipe's ``max_frames`` (well past the
    model's trained length), and the recipe's clip size too where the profile says
    ``sample_at_recipe_size``. Variants with ``tuned_from="svd"`` start from the profile's
    ``svd_base`` role where it has one (plain SVD under an ExVideo-tuned ``svd``, as on
    ``exsvd``), from ``svd`` otherwise.
    """
    return exvideo_variants(ablation_models, ablation_cache, exvideo_recipe, exvideo_on_profile)


def exvideo_variants(pool, store, recipe, on_profile):
    """The ``exvideo`` fixture's generator on a model pool: it takes the pool's SVD on each
    use and drops its UNet copy, tuning data and tuned weights when the pool releases."""
    from pytest_ablation.methods.exvideo import ExVideoVariants

    long_video = dict(on_profile.long_video, frames=recipe.max_frames)
    if "height" in long_video:
        long_video.update(height=recipe.height, width=recipe.width)
    base = {}
    if "svd_base" in pool.profile.models:
        base = {"base": pool.loader("svd_base"), "base_identity": pool.identity("svd_base")}
    variants = ExVideoVariants(
        pool.loader("svd"),
        recipe=recipe,
        model_identity=pool.identity("svd"),
        store=store,
        long_video=long_video,
        sampler_options=on_profile.sampler_options,
        **base,
    )
    pool.on_release(variants.release)
    return variants


# -- ZS² ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def zs2(ablation_models):
    """ZS² text-to-video sampler on the profile's Stable Diffusion ("sd" role).

    The model loads on the first video actually generated, so a run served from the cache
    loads nothing.
    """
    return zs2_sampler(ablation_models)


def zs2_sampler(pool):
    """The ``zs2`` fixture's generator on a model pool: it takes the pool's Stable Diffusion
    on each use and keeps no reference to it."""
    from pytest_ablation.methods.zs2 import ZS2Sampler

    return ZS2Sampler(pool.loader("sd"), model_identity=pool.identity("sd"))
