"""A toy world small enough to train every model of a study here, on a two-core CPU.

Coloured shapes (``data``) are the whole world: captions such as "a red circle" and short
videos of one shape moving. The judge CLIP, the generators' own CLIP, a VAE, a text-to-image
UNet and an image-to-video UNet are all trained on it (``python -m
pytest_ablation.toyworld.train``) and shipped under ``weights/``, so the ``toy`` profile
tests the papers' claims with models that have learned something.
"""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).with_name("weights")

__all__ = ["WEIGHTS_DIR"]
