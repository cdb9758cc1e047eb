"""pytest-ablation: ablation studies of video diffusion methods as pytest tests.

Heavy libraries (torch, diffusers, open_clip) are imported lazily by the modules that need
them, so that loading the plugin keeps ``pytest --help`` fast.
"""

from .lazy import lazy_exports
from .version import __version__

_EXPORTS = {"run.video_folder": ("VideoFolder",), "run.catalog": ("replicates",)}

__getattr__, __dir__, _names = lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *_names]
