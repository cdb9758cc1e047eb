"""Training the toy world's models: a development package of this repository, not shipped.

The plugin needs only what ``pytest_ablation.toyworld`` holds at run time: the scenes
(``pytest_ablation.toyworld.data``), the weights' manifest check and the trained weights.
Everything that makes those weights lives here, run from the repository root:

    python -m toyworld.train [STAGE ...]     # judge, text, vae, t2i, i2v
    python -m toyworld.quality [STAGE ...]   # the figures of the weights as shipped

The stages write into ``pytest_ablation/toyworld/weights/`` by default (``--out`` elsewhere).
``training`` holds what the stages share; ``judge``, ``text_clip``, ``vae``, ``t2i`` and
``i2v`` are the stages, each with ``train`` and ``quality``. This package may import
``pytest_ablation``; the plugin never imports it.
"""
