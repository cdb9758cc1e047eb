"""pytest-ablation: ablation studies of video diffusion methods as pytest tests.

Heavy libraries (torch, diffusers, open_clip) are imported lazily by the modules that need
them, so that loading the plugin keeps ``pytest --help`` fast.
"""

__version__ = "0.1.0"
