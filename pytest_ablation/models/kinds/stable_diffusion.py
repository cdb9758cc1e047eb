"""``stable-diffusion``: Stable Diffusion 1.x parts from a hub id or a local folder."""

from pytest_ablation.models.components import SD_COMPONENTS
from pytest_ablation.models.kinds.pretrained_bundle import pretrained_bundle_kind

KIND = pretrained_bundle_kind(
    "stable-diffusion",
    "Stable Diffusion 1.x components from a hub id or a local folder (diffusers layout)",
    "load_stable_diffusion",
    SD_COMPONENTS,
)
