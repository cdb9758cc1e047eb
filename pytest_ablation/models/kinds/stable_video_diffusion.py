"""``stable-video-diffusion``: Stable Video Diffusion parts from a hub id or a local folder."""

from pytest_ablation.models.components import SVD_COMPONENTS
from pytest_ablation.models.kinds.pretrained_bundle import pretrained_bundle_kind

KIND = pretrained_bundle_kind(
    "stable-video-diffusion",
    "Stable Video Diffusion components from a hub id or a local folder (diffusers layout)",
    "load_stable_video_diffusion",
    SVD_COMPONENTS,
)
