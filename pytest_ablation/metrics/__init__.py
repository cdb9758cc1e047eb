"""Video metrics: pure functions of a video (F, 3, H, W) in [0, 1], plus a feature model.

Every metric returns a float and has a per-frame (or per-pair) form; the registry
(``pytest_ablation.metrics.registry``) names them for the plugin. Names are resolved on first
access, so importing this package does not import torch, open_clip or OpenCV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_ablation.lazy import lazy_exports

_EXPORTS = {
    "ClipModel": "clip_model",
    "TINY_MODEL": "clip_model",
    "MetricInput": "inputs",
    "MetricSpec": "registry",
    "Score": "registry",
    "register_metric": "registry",
    "get_metric": "registry",
    "metric_names": "registry",
    "clip_score": "dimensions.clip_score",
    "clip_score_per_frame": "dimensions.clip_score",
    "temporal_consistency": "dimensions.temporal_consistency",
    "temporal_consistency_per_pair": "dimensions.temporal_consistency",
    "video_coherence": "dimensions.video_coherence",
    "video_coherence_per_frame": "dimensions.video_coherence",
    "condition_consistency": "dimensions.condition_consistency",
    "condition_consistency_per_frame": "dimensions.condition_consistency",
    "video_quality": "dimensions.video_quality",
    "video_quality_per_frame": "dimensions.video_quality",
    "temporal_flickering": "dimensions.temporal_flickering",
    "temporal_flickering_per_pair": "dimensions.temporal_flickering",
    "motion_smoothness": "dimensions.motion_smoothness",
    "motion_smoothness_per_frame": "dimensions.motion_smoothness",
    "dynamic_degree": "dimensions.dynamic_degree",
    "dynamic_degree_per_pair": "dimensions.dynamic_degree",
    "Interpolator": "interpolators",
    "FlowMidpointInterpolator": "interpolators",
    "LinearInterpolator": "interpolators",
    "check_video": "validation",
    "check_image": "validation",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:
    from pytest_ablation.metrics.clip_model import TINY_MODEL, ClipModel
    from pytest_ablation.metrics.dimensions.clip_score import clip_score, clip_score_per_frame
    from pytest_ablation.metrics.dimensions.condition_consistency import (
        condition_consistency,
        condition_consistency_per_frame,
    )
    from pytest_ablation.metrics.dimensions.dynamic_degree import (
        dynamic_degree,
        dynamic_degree_per_pair,
    )
    from pytest_ablation.metrics.inputs import MetricInput
    from pytest_ablation.metrics.interpolators import (
        FlowMidpointInterpolator,
        Interpolator,
        LinearInterpolator,
    )
    from pytest_ablation.metrics.dimensions.motion_smoothness import (
        motion_smoothness,
        motion_smoothness_per_frame,
    )
    from pytest_ablation.metrics.registry import (
        MetricSpec,
        Score,
        get_metric,
        metric_names,
        register_metric,
    )
    from pytest_ablation.metrics.dimensions.temporal_consistency import (
        temporal_consistency,
        temporal_consistency_per_pair,
    )
    from pytest_ablation.metrics.dimensions.temporal_flickering import (
        temporal_flickering,
        temporal_flickering_per_pair,
    )
    from pytest_ablation.metrics.validation import check_image, check_video
    from pytest_ablation.metrics.dimensions.video_coherence import (
        video_coherence,
        video_coherence_per_frame,
    )
    from pytest_ablation.metrics.dimensions.video_quality import (
        video_quality,
        video_quality_per_frame,
    )
