"""ExVideo: extending Stable Video Diffusion to long videos by parameter-efficient post-tuning.

- ``extend_unet(unet, max_frames, position=..., identity_conv=True)``: patches every temporal
  transformer of a diffusers ``UNetSpatioTemporalConditionModel`` in place: positional
  embedding kind (``POSITION_KINDS``) and the identity 3D convolution.
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
    "POSITION_KINDS": "positions",
    "SVD_FRAMES": "positions",
    "check_position": "positions",
    "ping_pong_id": "positions",
    "ping_pong_ids": "positions",
    "static_ids": "positions",
    "cyclic_ids": "positions",
    "interpolated_ids": "positions",
    "position_ids": "positions",
    "extend_unet": "temporal",
    "is_extended": "temporal",
    "exvideo_settings": "temporal",
    "ExVideoSettings": "temporal",
    "exvideo_parameter_names": "temporal",
    "exvideo_state_dict": "temporal",
    "load_exvideo_state_dict": "temporal",
    "temporal_transformers": "temporal",
    "IdentityConv3d": "temporal",
    "PositionTable": "temporal",
    "ExTransformerSpatioTemporalModel": "temporal",
    "FramesError": "temporal",
    "convert_exsvd_state_dict": "convert",
    "to_exsvd_state_dict": "convert",
    "CheckpointError": "convert",
    "EXSVD_BLOCKS": "convert",
    "SVD_XT_UNET_CONFIG": "convert",
    "svd_xt_unet": "convert",
    "load_exsvd_unet": "loading",
    "install_exsvd": "loading",
    "exsvd_file": "loading",
    "EXSVD_REPO": "release",
    "EXSVD_FILE": "release",
    "SVD_XT_REPO": "release",
    "ExVideoSampler": "sampler",
    "post_tune": "tuning",
    "encode_videos": "tuning",
    "denoising_loss": "tuning",
    "draw_noise": "tuning",
    "TuningData": "tuning",
    "TuningResult": "tuning",
    "moving_shapes": "data",
    "scene_image": "data",
    "ExVideoVariants": "variants",
    "TuningRecipe": "variants",
    "TINY_RECIPE": "variants",
    "TOY_RECIPE": "variants",
    "STANDARD_RECIPE": "variants",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
