"""pytest-ablation: ablation studies of video diffusion methods as pytest tests.

Heavy libraries (torch, diffusers, open_clip) are imported lazily by the modules that need
them, so that loading the plugin keeps ``pytest --help`` fast.
"""

from .version import __version__

__all__ = ["__version__"]
