"""ExVideo's post-tuning on a GPU (the emulated one of ``cuda_emulation``): device-clean,
run with deterministic kernels, and the identity convolution's CUDA training path pads
exactly as reflect padding does."""

from __future__ import annotations

import copy
import os

import pytest
import torch

from cuda_emulation import emulated_cuda
from pytest_ablation.methods.exvideo import encode_videos, extend_unet, moving_shapes, post_tune
from pytest_ablation.methods.exvideo.temporal import IdentityConv3d
from pytest_ablation.methods.exvideo.tuning import deterministic_on


def test_post_tuning_on_a_gpu_runs_deterministic_kernels_and_matches_the_cpu(tiny_svd):
    clips = moving_shapes(2, 6, 16, 16, generator=torch.Generator().manual_seed(0))
    data = encode_videos(tiny_svd, clips, generator=torch.Generator().manual_seed(1))
    cpu_unet = extend_unet(copy.deepcopy(tiny_svd.unet), max_frames=8)
    gpu_unet = copy.deepcopy(cpu_unet)
    cpu = post_tune(cpu_unet, data, 2, components=tiny_svd, lr=1e-2, seed=3)
    assert not torch.are_deterministic_algorithms_enabled()

    seen = []
    with emulated_cuda():
        components = copy.copy(tiny_svd)
        gpu_unet = gpu_unet.to("cuda")
        gpu_data = encode_videos(tiny_svd, clips, generator=torch.Generator().manual_seed(1))
        gpu_data = type(gpu_data)(
            **{
                name: value.to("cuda") if isinstance(value, torch.Tensor) else value
                for name, value in vars(gpu_data).items()
            }
        )

        def watch(step, loss):
            seen.append((torch.are_deterministic_algorithms_enabled(), torch.backends.cuda.flash_sdp_enabled()))

        gpu = post_tune(gpu_unet, gpu_data, 2, components=components, lr=1e-2, seed=3, callback=watch)
        assert next(gpu_unet.parameters()).device == torch.device("cuda", 0)
    # Deterministic kernels and no flash attention while tuning, torch as it was after.
    assert seen == [(True, False)] * 2
    assert not torch.are_deterministic_algorithms_enabled()
    # The first loss is the same computation (the CPU's identity convolution sums in another
    # order, hence not bit for bit); later ones follow weights moved by lr=1e-2 steps.
    assert gpu.losses[0] == pytest.approx(cpu.losses[0], rel=1e-4)


def test_the_deterministic_mode_is_scoped_to_cuda_and_restored():
    with deterministic_on(torch.device("cpu")):
        assert not torch.are_deterministic_algorithms_enabled()
    with deterministic_on(torch.device("cuda", 0)):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("shape", [(1, 4, 3, 5, 6), (2, 3, 2, 2, 2), (1, 2, 5, 1, 4), (1, 2, 1, 3, 3)])
def test_the_cuda_training_path_pads_as_reflect_padding_does(shape):
    torch.manual_seed(0)
    conv = IdentityConv3d(shape[1])
    with torch.no_grad():
        conv.weight.normal_()
        conv.bias.normal_()
    x = torch.randn(shape, requires_grad=True)
    # The CPU module's own path: reflect padding through nn.Conv3d where every axis has two
    # samples (replication along an axis of one).
    expected = conv(x)
    expected.square().sum().backward()
    expected_grads = (x.grad.clone(), conv.weight.grad.clone())
    with emulated_cuda():
        gpu = copy.deepcopy(conv).to("cuda")
        y = x.detach().to("cuda").requires_grad_(True)
        out = gpu(y)
        out.square().sum().backward()
        got = (out.cpu(), y.grad.cpu(), gpu.weight.grad.cpu())
    torch.testing.assert_close(got[0], expected.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[1], expected_grads[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[2], expected_grads[1], rtol=1e-5, atol=1e-6)


def test_select_device_fixes_the_cublas_workspace(monkeypatch):
    from pytest_ablation.run.devices import DeviceAssignment, select_device

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        with emulated_cuda(devices=2):
            select_device(DeviceAssignment(device="cuda:1"))
            assert torch.cuda.current_device() == 1
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before
