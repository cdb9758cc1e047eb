"""The DINO backbone takes frames preprocessed on the CPU and meets its weights' device."""

import pytest
import torch

pytest.importorskip("timm")

from pytest_ablation.metrics.backends.dino import DinoViT, architecture  # noqa: E402


def test_frames_from_the_cpu_are_moved_to_the_weights_device():
    # The architecture is built on the meta device (shapes only): a model on a device that is
    # not the CPU, as on a GPU worker. CPU frames reach it as VBench's preprocessing leaves them.
    model = DinoViT(architecture()).eval()
    assert model.vit.cls_token.device.type == "meta"
    frames = torch.rand(2, 3, 224, 224, dtype=torch.float64)
    features = model(frames)
    assert features.device.type == "meta"
    assert features.dtype == model.vit.cls_token.dtype
    assert tuple(features.shape) == (2, 768)
