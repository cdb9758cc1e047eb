"""A toy study for exercising the plugin through pytester: cheap, model-free, countable."""

import textwrap

import pytest
import torch

TOY_WORLD = """
import os


def load_toy(device, scale=1.0):
    log = os.environ.get("TOY_LOAD_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()} {device}\\n")
    return {"scale": scale, "device": device}
"""

TOY_PROFILE = """
[profile]
name = "toy-test"
description = "a callable model for plugin tests"

[settings]
# Six prompts: the fewest at which a claim can hold (a one-sided test at 2.5% needs 2**-n <= 0.025).
prompts = ["a red circle", "a blue square", "a green cross", "a white star", "a grey ring", "a pink dot"]
seeds = 2
frames = 4
steps = 1
height = 8
width = 8
guidance_scale = 1.0
fps = 8

[models.toy]
kind = "callable"
source = "toy_world:load_toy"
scale = 0.9
"""

FAKE_CUDA = '''
"""Answers torch's CUDA questions as a machine with SIMULATED_GPUS GPUs would, 0 included:
the plugin tests see the machine they describe, not the one they run on (which may have a
GPU). It patches torch for the whole process; the ``toy`` fixture restores torch after an
in-process run.
"""
import os

import torch

PHYSICAL = int(os.environ.get("SIMULATED_GPUS") or 0)


def _visible():
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return PHYSICAL
    count = 0
    for part in listed.split(","):  # as CUDA does: stop at the first invalid entry
        part = part.strip()
        if not part.isdigit() or int(part) >= PHYSICAL:
            break
        count += 1
    return count


def _set_device(device):
    log = os.environ.get("TOY_DEVICE_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()} {device}\\n")


def _reset_peak_memory_stats(device=None):
    log = os.environ.get("TOY_PEAK_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()} {device}\\n")


if "SIMULATED_GPUS" in os.environ:
    torch.cuda.is_available = lambda: _visible() > 0
    torch.cuda.device_count = _visible
    torch.cuda.set_device = _set_device
    torch.cuda.reset_peak_memory_stats = _reset_peak_memory_stats
'''

CONFTEST = '''
import os

import pytest
import torch

import fake_cuda  # noqa: F401  (GPUs as SIMULATED_GPUS says, in subprocess runs)
from pytest_ablation.metrics.registry import MetricSpec, Score


def pytest_ablation_add_metrics(register):
    register(MetricSpec(
        name="mean_brightness", direction="higher", tolerance=0.0,
        definition="mean pixel value", source="plugin tests", needs=frozenset(), version="1",
        evaluate=lambda inp: Score(float(inp.video.mean()),
                                   tuple(inp.video.mean(dim=(1, 2, 3)).tolist())),
    ))


class Flicker:
    """Frames share a base image and add fresh noise of a given strength."""

    def __init__(self, model):
        self.model = model

    def cache_identity(self):
        return {"toy": "flicker", "scale": self.model["scale"]}

    def generate(self, request):
        log = os.environ.get("TOY_GENERATE_LOG")
        if log:
            with open(log, "a") as handle:
                handle.write(f"{request.config} {request.prompt} {request.seed} {request.seed_index}\\n")
        g = request.generator
        shape = (request.frames, 3, request.height, request.width)
        base = torch.rand((1,) + shape[1:], generator=g)
        noise = torch.rand(shape, generator=g)
        s = request.config["strength"]
        return (base * (1 - s) + noise * s) * self.model["scale"]


@pytest.fixture
def flicker(ablation_models):
    return Flicker(ablation_models.get("toy"))
'''

STUDY = """
import pytest


@pytest.mark.ablation("flicker", reference="s=0.5", metrics=["temporal_flickering", "mean_brightness"])
@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0], ids=lambda s: f"s={s}")
def test_flicker(strength, flicker, ablation):
    result = ablation.run(flicker, strength=strength)
    if strength == 0.0:
        ablation.expect(result, "temporal_flickering").above_reference(margin=0.01)
    if strength == 1.0:
        ablation.expect(result, "temporal_flickering").below_reference()
"""

SECOND_STUDY = """
import pytest


@pytest.mark.ablation("steady", reference="s=0.2", metrics=["temporal_flickering"])
@pytest.mark.parametrize("strength", [0.1, 0.2], ids=lambda s: f"s={s}")
def test_steady(strength, flicker, ablation, ablation_device):
    ablation.run(flicker, strength=strength)
"""


@pytest.fixture
def toy(pytester, monkeypatch, tmp_path):
    """A project with the toy profile and the flicker study; logs model loads and generations."""
    pytester.makepyfile(toy_world=TOY_WORLD, conftest=CONFTEST, test_flicker=STUDY, fake_cuda=FAKE_CUDA)
    (pytester.path / "toy.toml").write_text(textwrap.dedent(TOY_PROFILE))
    pytester.makeini("[pytest]\nablation_profile = toy.toml\n")
    # A machine without GPUs unless a test says otherwise, whatever this one has.
    monkeypatch.setenv("SIMULATED_GPUS", "0")
    for name in ("is_available", "device_count", "set_device", "reset_peak_memory_stats"):
        monkeypatch.setattr(torch.cuda, name, getattr(torch.cuda, name))  # restored after the test
    logs = tmp_path / "logs"
    logs.mkdir()
    monkeypatch.setenv("TOY_LOAD_LOG", str(logs / "loads.txt"))
    monkeypatch.setenv("TOY_GENERATE_LOG", str(logs / "generate.txt"))
    return pytester


@pytest.fixture
def second_study():
    return SECOND_STUDY


def lines(path):
    return path.read_text().splitlines() if path.exists() else []
