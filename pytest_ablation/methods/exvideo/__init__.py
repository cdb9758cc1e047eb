"""ExVideo: extending Stable Video Diffusion to long videos by parameter-efficient post-tuning.

- ``extend_unet(unet, max_frames, position=..., identity_conv=True)``: patches every temporal
  transformer of a diffusers ``UNetSpatioTemporalConditionModel`` in place: positional
  embedding kind (``POSITION_KINDS``, derived from the UNet's trained length
  ``config.num_frames``) and the identity 3D convolution.
- ``convert_exsvd_state_dict`` / ``to_exsvd_state_dict``: the released ExSVD checkpoint's
  DiffSynth names to and from the extended UNet's; ``load_exsvd_unet`` builds ExSVD.
- ``ExVideoSampler``: image to long video. ``post_tune``: the ExVideo training recipe.
- ``moving_shapes`` / ``scene_image``: procedural clips and condition images.
- ``ExVideoVariants`` / ``TuningRecipe``: post-tuned variants as one generator (the studies').

Names are imported on first use, so importing this package does not import torch.
"""

from __future__ import annotations

from pytest_ablation.lazy import lazy_exports

_EXPORTS = {
    "positions": (
        "POSITION_KINDS",
        "SVD_FRAMES",
        "check_position",
        "ping_pong_id",
        "ping_pong_ids",
        "static_ids",
        "cyclic_ids",
        "interpolated_ids",
        "position_ids",
        "trained_frames",
        "ping_pong_repeat",
    ),
    "temporal": (
        "extend_unet",
        "is_extended",
        "exvideo_settings",
        "ExVideoSettings",
        "exvideo_parameter_names",
        "exvideo_part",
        "NEW_PART_MODULES",
        "exvideo_state_dict",
        "load_exvideo_state_dict",
        "temporal_transformers",
        "IdentityConv3d",
        "PositionTable",
        "ExTransformerSpatioTemporalModel",
        "FramesError",
    ),
    "convert": (
        "convert_exsvd_state_dict",
        "to_exsvd_state_dict",
        "CheckpointError",
        "EXSVD_BLOCKS",
        "SVD_XT_UNET_CONFIG",
        "svd_xt_unet",
    ),
    "loading": ("load_exsvd_unet", "install_exsvd", "exsvd_file"),
    "release": ("EXSVD_REPO", "EXSVD_FILE", "SVD_XT_REPO"),
    "sampler": ("ExVideoSampler",),
    "tuning": (
        "post_tune",
        "encode_videos",
        "denoising_loss",
        "draw_noise",
        "TuningData",
        "TuningResult",
    ),
    "data": ("moving_shapes", "scene_image"),
    "variants": ("ExVideoVariants", "TuningRecipe", "STANDARD_RECIPE"),
    "profile": ("ExVideoOnProfile", "exvideo_on_profile"),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
