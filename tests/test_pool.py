"""The model pool on a GPU worker: models of a finished group are released, an
out-of-memory error names the device, the models and the peak, and the run goes on."""

import pytest
import torch

from pytest_ablation.run import devices
from pytest_ablation.run.devices import DeviceAssignment
from pytest_ablation.run.pool import ModelOutOfMemory, ModelPool


class Profile:
    models = {"sd": None, "svd": None, "clip": None}

    def model(self, role):
        return role


def pool_on(device, loader=None, released=None):
    return ModelPool(
        Profile(),
        DeviceAssignment(device=device),
        loader=loader or (lambda role, device: {"role": role, "device": device}),
        identifier=lambda spec: {"role": spec},
        on_release=released.append if released is not None else None,
    )


@pytest.fixture
def no_device_selection(monkeypatch):
    monkeypatch.setattr(devices, "select_device", lambda assignment: None)


def test_on_a_gpu_a_new_model_group_releases_the_last_ones_models(no_device_selection):
    released = []
    pool = pool_on("cuda:0", released=released)
    pool.enter_group("models:zs2")
    pool.get("sd"), pool.get("clip")
    pool.enter_group("models:zs2")
    assert pool.loaded() == ["clip", "sd"] and released == []
    pool.enter_group("models:exvideo")
    assert pool.loaded() == [] and released == [["clip", "sd"]]
    pool.get("svd")
    assert pool.loads == {"sd": 1, "clip": 1, "svd": 1}


def test_on_the_cpu_models_stay_across_groups():
    pool = pool_on("cpu")
    pool.enter_group("models:zs2")
    pool.get("sd")
    pool.enter_group("models:exvideo")
    assert pool.loaded() == ["sd"]


def test_out_of_memory_while_loading_names_device_models_and_peak(no_device_selection, monkeypatch):
    monkeypatch.setattr(devices, "peak_memory", lambda device: 21 * 2**30)

    def loader(role, device):
        if role == "svd":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return role

    pool = pool_on("cuda:1", loader=loader)
    pool.get("sd")
    with pytest.raises(ModelOutOfMemory) as error:
        pool.get("svd")
    message = str(error.value)
    assert "out of memory on cuda:1 while loading model 'svd'" in message
    assert "models loaded on this worker: 'sd'" in message
    assert "peak memory allocated 21.00 GiB" in message and "Tried to allocate 2.00 GiB" in message
    assert pool.loaded() == []  # freed, so that the next test can load what it needs
    assert pool.get("sd") == "sd"


def test_peak_memory_is_unknown_off_cuda():
    assert devices.peak_memory("cpu") is None
    assert devices.format_bytes(None) == "unknown"
    assert devices.format_bytes(3 * 2**20) == "3.0 MiB"
