"""A toy world small enough to train every model of a study here, on a two-core CPU.

Coloured shapes (``data``) are the whole world: captions such as "a red circle" and short
videos of one shape moving. The judge CLIP, the generators' own CLIP, a VAE, a text-to-image
UNet and an image-to-video UNet are all trained on it and shipped under ``weights/`` (with
``weights/manifest.json``, checked by ``weights`` before a file loads), so the ``toy``
profile tests the papers' claims with models that have learned something. The training code
is not part of the package: it is the repository's ``toyworld`` development package
(``python -m toyworld.train``, run from the repository root).

Since the world's palette, shapes and backgrounds are known, ``parser`` reads a frame back
exactly (object position, size, colour, shape; the background), ``metrics`` and
``scene_metrics`` score videos with it (registered by the ``plugin`` module, a pytest11 entry
point), and ``controls`` draws videos with one known defect each to check those metrics.
"""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).with_name("weights")

__all__ = ["WEIGHTS_DIR"]
