"""Video metrics: pure functions of a video (F, 3, H, W) in [0, 1], plus a feature model.

Every metric returns a float and has a per-frame (or per-pair) form; each is one module of
``dimensions`` declaring its ``SPEC``, and a run's ``MetricRegistry``
(``pytest_ablation.metrics.registry``) names them for the plugin. Names are resolved on first
access, so importing this package does not import torch, open_clip or OpenCV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_ablation.lazy import lazy_exports

_EXPORTS = {
    "clip_model": ("ClipModel", "TINY_MODEL"),
    "inputs": ("MetricInput",),
    "registry": ("MetricRegistry", "MetricSpec", "Score", "get_metric", "metric_names"),
    "dimensions.clip_score": ("clip_score", "clip_score_per_frame"),
    "dimensions.temporal_consistency": ("temporal_consistency", "temporal_consistency_per_pair"),
    "dimensions.video_coherence": ("video_coherence", "video_coherence_per_frame"),
    "dimensions.condition_consistency": (
        "condition_consistency",
        "condition_consistency_per_frame",
    ),
    "dimensions.video_quality": ("video_quality", "video_quality_per_frame"),
    "dimensions.temporal_flickering": ("temporal_flickering", "temporal_flickering_per_pair"),
    "dimensions.motion_smoothness": ("motion_smoothness", "motion_smoothness_per_frame"),
    "dimensions.dynamic_degree": ("dynamic_degree", "dynamic_degree_per_pair"),
    "dimensions.dynamic_degree_vbench": (
        "dynamic_degree_vbench",
        "dynamic_degree_vbench_per_pair",
    ),
    "dimensions.imaging_quality": ("imaging_quality", "imaging_quality_per_frame"),
    "dimensions.subject_consistency": ("subject_consistency", "subject_consistency_per_frame"),
    "dimensions.background_consistency": (
        "background_consistency",
        "background_consistency_per_frame",
    ),
    "dimensions.aesthetic_quality": ("aesthetic_quality", "aesthetic_quality_per_frame"),
    "dimensions.fvd": ("fvd",),
    "interpolators": ("Interpolator", "FlowMidpointInterpolator", "LinearInterpolator"),
    "validation": ("check_video", "check_image"),
    "weights": ("WeightFile", "WeightsMissing", "register_weight_file", "weight_file", "weight_files"),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)


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
    from pytest_ablation.metrics.dimensions.dynamic_degree_vbench import (
        dynamic_degree_vbench,
        dynamic_degree_vbench_per_pair,
    )
    from pytest_ablation.metrics.dimensions.imaging_quality import (
        imaging_quality,
        imaging_quality_per_frame,
    )
    from pytest_ablation.metrics.dimensions.aesthetic_quality import (
        aesthetic_quality,
        aesthetic_quality_per_frame,
    )
    from pytest_ablation.metrics.dimensions.background_consistency import (
        background_consistency,
        background_consistency_per_frame,
    )
    from pytest_ablation.metrics.dimensions.subject_consistency import (
        subject_consistency,
        subject_consistency_per_frame,
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
        MetricRegistry,
        MetricSpec,
        Score,
        get_metric,
        metric_names,
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
    from pytest_ablation.metrics.weights import (
        WeightFile,
        WeightsMissing,
        register_weight_file,
        weight_file,
        weight_files,
    )
    from pytest_ablation.metrics.dimensions.video_coherence import (
        video_coherence,
        video_coherence_per_frame,
    )
    from pytest_ablation.metrics.dimensions.video_quality import (
        video_quality,
        video_quality_per_frame,
    )
