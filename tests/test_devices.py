import pytest
import torch

from pytest_ablation.run.devices import (
    DeviceError,
    assign,
    auto_worker_count,
    gpus_from_environment,
    parse_devices,
    resolve_devices,
)


def test_parse():
    assert parse_devices("auto") == "auto"
    assert parse_devices("cpu") == ["cpu"]
    assert parse_devices("cuda:0, cuda:1") == ["cuda:0", "cuda:1"]


@pytest.mark.parametrize("bad", ["", "gpu0", "cuda", "cuda:x", "cuda:0,,cuda:1", "cuda:-1"])
def test_malformed_lists_name_the_option(bad):
    with pytest.raises(DeviceError, match="--ablation-devices: .* is not a device"):
        parse_devices(bad)


def test_index_beyond_visible_gpus(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    with pytest.raises(DeviceError, match=r"cuda:2 is beyond the 2 visible GPUs \(CUDA_VISIBLE_DEVICES=4,5\)"):
        resolve_devices(["cuda:2"], ["4", "5"])
    with pytest.raises(DeviceError, match="none, use 'cpu'"):
        resolve_devices(["cuda:0"], [])


def test_visible_devices_are_respected(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,7")
    gpus = gpus_from_environment(3)
    assert gpus == ["4", "5", "7"]
    devices = resolve_devices("auto", gpus)
    assert [assign(devices, gpus, i).physical for i in range(3)] == ["4", "5", "7"]
    assert assign(devices, gpus, 1).device == "cuda:1"
    assert assign(devices, gpus, 1).threads is None


def test_auto_without_gpus_is_cpu_with_one_thread_per_process():
    devices = resolve_devices("auto", [])
    assert devices == ["cpu"]
    assert {assign(devices, [], i).threads for i in range(4)} == {1}


def test_workers_are_dealt_devices_round_robin():
    gpus = ["0", "1"]
    devices = resolve_devices(["cuda:0", "cuda:1"], gpus)
    assert [assign(devices, gpus, i).device for i in range(4)] == [
        "cuda:0",
        "cuda:1",
        "cuda:0",
        "cuda:1",
    ]


def test_auto_worker_count():
    assert auto_worker_count(["cuda:0", "cuda:1", "cuda:2"], 64) == 3
    assert auto_worker_count(["cpu"], 2) == 2


def test_selecting_a_gpu_makes_it_current_and_cudnn_deterministic(monkeypatch):
    import torch

    from pytest_ablation.run.devices import DeviceAssignment, select_device

    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    for name in ("deterministic", "benchmark", "allow_tf32"):
        monkeypatch.setattr(torch.backends.cudnn, name, not getattr(torch.backends.cudnn, name))
    matmul_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        select_device(DeviceAssignment(device="cuda:1", physical="6"))
        assert not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
    assert chosen == [1]
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert not torch.backends.cudnn.allow_tf32
    with pytest.raises(DeviceError, match=r"this process was given cuda:2 but sees 2 GPUs"):
        select_device(DeviceAssignment(device="cuda:2"))


def test_a_gpu_is_described_by_model_memory_and_software(monkeypatch, tmp_path):
    from cuda_emulation import emulated_cuda

    from pytest_ablation.run import devices

    version = tmp_path / "version"
    version.write_text(
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  "
        "Release Build  (dvs-builder@U16-I3-B03-4-3)  Tue Mar  5 22:17:39 UTC 2024\n"
    )
    real_path = devices.Path
    monkeypatch.setattr(
        devices, "Path", lambda p: real_path(version) if p == "/proc/driver/nvidia/version" else real_path(p)
    )
    with emulated_cuda(devices=2):
        gpu = devices.describe_gpu("cuda:1")
    assert gpu["name"] == "Emulated CUDA device 1"
    assert gpu["memory_bytes"] > 0 and gpu["capability"] == "9.0"
    assert gpu["driver"] == "550.54.15"
    assert gpu["cuda"] == torch.version.cuda
    assert devices.describe_gpu("cpu") is None


def test_a_gpu_that_cannot_be_asked_is_described_with_nones(monkeypatch):
    from pytest_ablation.run import devices

    def refuse(*args, **kwargs):
        raise RuntimeError("no CUDA driver")

    for name in ("get_device_name", "get_device_properties", "get_device_capability"):
        monkeypatch.setattr(torch.cuda, name, refuse)
    gpu = devices.describe_gpu("cuda:0")
    assert (gpu["name"], gpu["memory_bytes"], gpu["capability"]) == (None, None, None)


def test_gpu_workers_share_the_cores_and_cpu_workers_take_one():
    gpus = ["0", "1", "2", "3"]
    devices = resolve_devices("auto", gpus)
    assert [assign(devices, gpus, i, workers=4, cpus=16).threads for i in range(4)] == [4] * 4
    assert assign(devices, gpus, 0, workers=32, cpus=16).threads == 1
    assert assign(devices, gpus, 0, workers=1, cpus=16).threads is None  # one process: torch's own
    assert assign(["cpu"], [], 3, workers=4, cpus=16).threads == 1
