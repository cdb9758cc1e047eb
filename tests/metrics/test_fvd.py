"""FVD: the Fréchet distance, the I3D feature model and the bootstrap interval."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pytest_ablation.metrics.backends.i3d import InceptionI3d, load_i3d
from pytest_ablation.metrics.dimensions.fvd import (
    MIN_VIDEOS,
    bootstrap,
    feature_distance,
    frechet_distance,
    fvd,
    small_set_warning,
)

# --- independent computations -----------------------------------------------------------------


def _sqrtm_denman_beavers(a: np.ndarray, steps: int = 100) -> np.ndarray:
    """Principal square root by the Denman-Beavers iteration (no eigendecomposition)."""
    y, z = a.copy(), np.eye(len(a))
    for _ in range(steps):
        y, z = (y + np.linalg.inv(z)) / 2, (z + np.linalg.inv(y)) / 2
    return y


def _fd_reference(mu1, s1, mu2, s2) -> float:
    """FID's formula as the TTUR / torch-fidelity code writes it: trace of the square root of
    S1 S2 from the (complex) eigenvalues of the non-symmetric product."""
    diff = mu1 - mu2
    tr = np.sqrt(np.linalg.eigvals(s1 @ s2).astype(complex)).real.sum()
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr)


def _random_spd(d: int, rng, rank: int | None = None) -> np.ndarray:
    a = rng.standard_normal((d, rank or d + 3))
    return a @ a.T / a.shape[1]


def _rotation(d: int, rng) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return q


# --- the Fréchet distance --------------------------------------------------------------------


def test_identical_gaussians_are_at_distance_zero():
    rng = np.random.default_rng(0)
    mu, s = rng.standard_normal(12), _random_spd(12, rng)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)


def test_a_shifted_mean_adds_the_squared_shift():
    rng = np.random.default_rng(1)
    mu, s, shift = rng.standard_normal(10), _random_spd(10, rng), rng.standard_normal(10)
    assert frechet_distance(mu + shift, s, mu, s) == pytest.approx(shift @ shift, rel=1e-9)


def test_commuting_covariances_match_the_closed_form():
    # S1 = Q D1 Q^T and S2 = Q D2 Q^T commute: Tr(S1 + S2 - 2 (S1 S2)^1/2) = sum (sqrt d1 - sqrt d2)^2.
    rng = np.random.default_rng(2)
    q = _rotation(9, rng)
    d1, d2 = rng.uniform(0.1, 3, 9), rng.uniform(0.1, 3, 9)
    mu1, mu2 = rng.standard_normal(9), rng.standard_normal(9)
    expected = (mu1 - mu2) @ (mu1 - mu2) + np.sum((np.sqrt(d1) - np.sqrt(d2)) ** 2)
    got = frechet_distance(mu1, q @ np.diag(d1) @ q.T, mu2, q @ np.diag(d2) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)


def test_general_covariances_match_two_independent_square_roots():
    rng = np.random.default_rng(3)
    d = 20
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = _random_spd(d, rng), _random_spd(d, rng)
    root = _sqrtm_denman_beavers(s1 @ s2)
    by_iteration = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2 - 2 * root)
    got = frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(by_iteration, rel=1e-8)
    assert got == pytest.approx(_fd_reference(mu1, s1, mu2, s2), rel=1e-8)
    assert got > 0.5  # two random Gaussians: far from a degenerate zero


@pytest.mark.parametrize("n1, n2, d", [(6, 9, 30), (40, 50, 6)])
def test_distance_of_feature_sets_equals_that_of_their_gaussian_fits(n1, n2, d):
    # (6, 9, 30): fewer videos than dimensions, singular covariances (the nuclear-norm path);
    # (40, 50, 6): the covariance path.
    rng = np.random.default_rng(4)
    x1 = rng.standard_normal((n1, d))
    x2 = 0.5 + 1.5 * rng.standard_normal((n2, d))
    expected = _fd_reference(x1.mean(0), np.cov(x1, rowvar=False), x2.mean(0), np.cov(x2, rowvar=False))
    assert feature_distance(x1, x2) == pytest.approx(expected, rel=1e-7)
    assert feature_distance(x1, x1) == pytest.approx(0.0, abs=1e-8)


def test_bad_shapes_and_too_few_videos_are_refused():
    with pytest.raises(ValueError, match="shapes do not match"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="at least 2 videos"):
        feature_distance(np.zeros((1, 4)), np.zeros((5, 4)))


# --- the bootstrap ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.slow
def test_bootstrap_interval_covers_the_true_distance_at_its_level():
    # Two Gaussian populations with a known Fréchet distance; both sets sampled. The basic
    # interval must cover the truth about 95% of the time; the percentile interval, which
    # inherits FVD's small-sample upward bias twice, is shown to miss it much more often.
    rng = np.random.default_rng(5)
    d, n, replications = 8, 64, 120
    shift, scales = np.full(d, 0.5), np.linspace(0.5, 1.5, d)
    true = shift @ shift + np.sum((1 - scales) ** 2)
    covered = {"basic": 0, "percentile": 0}
    for replication in range(replications):
        x1 = rng.standard_normal((n, d))
        x2 = shift + scales * rng.standard_normal((n, d))
        for method in covered:
            low, high, _ = bootstrap(x1, x2, resamples=200, seed=replication, method=method)
            covered[method] += low <= true <= high
    basic = covered["basic"] / replications
    # 120 replications: the binomial standard error at 95% is 2 points; 0.87-0.99 is 4 of them.
    assert 0.87 <= basic <= 0.99, covered
    assert covered["percentile"] / replications < basic - 0.2, covered


def test_bootstrap_is_reproducible_from_its_seed():
    rng = np.random.default_rng(6)
    x1, x2 = rng.standard_normal((30, 5)), 1 + rng.standard_normal((30, 5))
    first = bootstrap(x1, x2, resamples=50, seed=3)
    again = bootstrap(x1, x2, resamples=50, seed=3)
    other = bootstrap(x1, x2, resamples=50, seed=4)
    assert first[:2] == again[:2]
    assert first[:2] != other[:2]
    assert first[0] <= feature_distance(x1, x2) <= first[1]


def test_fvd_result_warns_below_the_threshold_and_not_above():
    rng = np.random.default_rng(7)
    x1, x2 = rng.standard_normal((20, 4)), rng.standard_normal((24, 4))
    small = fvd(x1, x2, resamples=20)
    assert small.warning is not None and str(MIN_VIDEOS) in small.warning
    assert "20 variant and 24 reference" in small.warning
    assert (small.n_variant, small.n_reference) == (20, 24)
    # Both sets from one distribution: the true distance is 0, and the bias-corrected
    # interval reaches down to it even where the (upward-biased) estimate does not.
    assert 0.0 == small.low <= small.high
    assert small.value > 0
    assert fvd(x1, x2, resamples=20, minimum=20).warning is None
    assert small_set_warning(MIN_VIDEOS, MIN_VIDEOS) is None
    assert small_set_warning(MIN_VIDEOS - 1, 10_000) is not None


def test_the_reference_set_against_itself_is_zero_without_an_interval():
    x = np.random.default_rng(8).standard_normal((10, 4))
    result = fvd(x, x, same_set=True)
    assert (result.value, result.interval, result.is_reference) == (0.0, None, True)


# --- I3D -------------------------------------------------------------------------------------

# The layer table of piergiaj/pytorch-i3d (pytorch_i3d.py), written out here independently of
# the implementation: Inception blocks' widths are (b0, b1a, b1b, b2a, b2b, b3b).
_UNITS = {"Conv3d_1a_7x7": (3, 64, 7), "Conv3d_2b_1x1": (64, 64, 1), "Conv3d_2c_3x3": (64, 192, 3)}
_MIXED = {
    "Mixed_3b": (192, [64, 96, 128, 16, 32, 32]),
    "Mixed_3c": (256, [128, 128, 192, 32, 96, 64]),
    "Mixed_4b": (128 + 192 + 96 + 64, [192, 96, 208, 16, 48, 64]),
    "Mixed_4c": (192 + 208 + 48 + 64, [160, 112, 224, 24, 64, 64]),
    "Mixed_4d": (160 + 224 + 64 + 64, [128, 128, 256, 24, 64, 64]),
    "Mixed_4e": (128 + 256 + 64 + 64, [112, 144, 288, 32, 64, 64]),
    "Mixed_4f": (112 + 288 + 64 + 64, [256, 160, 320, 32, 128, 128]),
    "Mixed_5b": (256 + 320 + 128 + 128, [256, 160, 320, 32, 128, 128]),
    "Mixed_5c": (256 + 320 + 128 + 128, [384, 192, 384, 48, 128, 128]),
}


def _reference_layout() -> dict[str, tuple]:
    """Key -> shape of a state dict saved by the reference port (without the BatchNorm step
    counters, which checkpoints of torch < 0.4 do not have)."""
    shapes = {}

    def unit(prefix, cin, cout, k):
        shapes[f"{prefix}.conv3d.weight"] = (cout, cin, k, k, k)
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.bn.{name}"] = (cout,)

    for name, (cin, cout, k) in _UNITS.items():
        unit(name, cin, cout, k)
    for name, (cin, (w0, w1a, w1b, w2a, w2b, w3)) in _MIXED.items():
        unit(f"{name}.b0", cin, w0, 1)
        unit(f"{name}.b1a", cin, w1a, 1)
        unit(f"{name}.b1b", w1a, w1b, 3)
        unit(f"{name}.b2a", cin, w2a, 1)
        unit(f"{name}.b2b", w2a, w2b, 3)
        unit(f"{name}.b3b", cin, w3, 1)
    shapes["logits.conv3d.weight"] = (400, 384 + 384 + 128 + 128, 1, 1, 1)
    shapes["logits.conv3d.bias"] = (400,)
    return shapes


def _reference_checkpoint(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in the reference's key names, scaled so that activations neither vanish
    nor explode through the 20-odd layers (He initialisation, unit batch-norm statistics)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in _reference_layout().items():
        if key.endswith("conv3d.weight"):
            fan_in = int(np.prod(shape[1:]))
            state[key] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif key.endswith("running_var") or key.endswith("bn.weight"):
            state[key] = 0.5 + torch.rand(shape, generator=g)
        else:
            state[key] = 0.1 * torch.randn(shape, generator=g)
    return state


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("i3d") / "rgb_imagenet.pt"
    state = _reference_checkpoint()
    torch.save(state, path)
    return path, state


def _videos(count: int, frames: int = 4, size: int = 32, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (frames, 3, size, size), generator=g, dtype=torch.uint8) for _ in range(count)]


def test_the_module_has_exactly_the_reference_ports_keys_and_shapes():
    ours = {k: tuple(v.shape) for k, v in InceptionI3d().state_dict().items() if not k.endswith("num_batches_tracked")}
    assert ours == _reference_layout()


def test_a_reference_layout_checkpoint_loads_with_its_values(checkpoint):
    path, state = checkpoint
    features = load_i3d(path, size=32)
    assert features.kind == "state_dict"
    loaded = features.model.state_dict()
    for key in ("Conv3d_1a_7x7.conv3d.weight", "Mixed_4e.b2b.bn.running_var", "logits.conv3d.bias"):
        assert torch.equal(loaded[key], state[key]), key


def test_data_parallel_prefixes_are_accepted_and_foreign_keys_refused(tmp_path, checkpoint):
    _, state = checkpoint
    prefixed = tmp_path / "dp.pt"
    torch.save({f"module.{k}": v for k, v in state.items()}, prefixed)
    assert load_i3d(prefixed, size=32).kind == "state_dict"
    broken = tmp_path / "broken.pt"
    torch.save({**state, "Mixed_6a.b0.conv3d.weight": torch.zeros(1)}, broken)
    with pytest.raises(ValueError, match="Mixed_6a"):
        load_i3d(broken)


def test_features_are_deterministic_and_depend_on_the_video(checkpoint):
    path, _ = checkpoint
    model = load_i3d(path, size=32)
    videos = _videos(3)
    first, again = model(videos), model(videos)
    assert first.shape == (3, 400)
    assert np.array_equal(first, again)
    assert np.abs(first[0] - first[1]).max() > 1e-3 * np.abs(first).max()


def test_features_match_an_independent_preprocessing(checkpoint):
    path, _ = checkpoint
    model = load_i3d(path, size=32)
    video = _videos(1, size=24)[0]
    # Resize each frame to the model's side, bilinear, then [0, 255] -> [-1, 1]; (C, T, H, W).
    x = F.interpolate(video.float(), size=(32, 32), mode="bilinear", align_corners=False)
    x = (2 * x / 255 - 1).permute(1, 0, 2, 3)[None]
    with torch.no_grad():
        expected = model.model(x).double().numpy()
    assert np.allclose(model([video]), expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


def test_fvd_end_to_end_equals_features_then_frechet(checkpoint, monkeypatch):
    from pytest_ablation.metrics.dimensions.fvd import features_of

    path, _ = checkpoint
    monkeypatch.setenv("PYTEST_ABLATION_WEIGHTS_I3D", str(path))
    generated, real = _videos(5, seed=1), _videos(6, seed=2)
    result = fvd(features_of(generated, size=32), features_of(real, size=32), resamples=50)
    independent = load_i3d(path, size=32)
    f1, f2 = independent(generated), independent(real)
    expected = _fd_reference(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))
    assert expected > 0
    assert result.value == pytest.approx(expected, rel=1e-6)


class _Detector(torch.nn.Module):
    """Stands in for StyleGAN-V's i3d_torchscript.pt: answers only the call FVD code makes,
    and reports what it was given (range, frames, size) in its first features."""

    def forward(
        self, x: torch.Tensor, rescale: bool = True, resize: bool = True, return_features: bool = False
    ) -> torch.Tensor:
        if rescale or resize or not return_features:
            raise RuntimeError("called with the wrong keyword arguments")
        summary = torch.stack(
            [
                x.min(),
                x.max(),
                torch.tensor(float(x.shape[2])),
                torch.tensor(float(x.shape[3])),
                torch.tensor(float(x.shape[4])),
            ]
        )
        return torch.cat([summary.expand(x.shape[0], 5), torch.zeros(x.shape[0], 395)], dim=1)


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")  # the format still exists
def test_a_torchscript_detector_is_called_as_fvd_code_calls_it(tmp_path):
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.script(_Detector()).save(str(path))
    model = load_i3d(path)
    assert model.kind == "torchscript"
    video = torch.zeros(6, 3, 20, 30, dtype=torch.uint8)
    video[:, :, :10] = 255
    features = model([video])
    assert features.shape == (1, 400)
    low, high, frames, height, width = features[0, :5]
    assert (low, high) == (pytest.approx(-1.0, abs=1e-6), pytest.approx(1.0, abs=1e-6))
    assert (frames, height, width) == (6, 224, 224)  # every frame resized to 224x224


@pytest.mark.slow
@pytest.mark.slow
def test_features_at_the_standard_size(checkpoint):
    # 224x224, as FVD computes them: the spatial map before the logits is 7x7 there, so the
    # 2x7x7 average pool of the checkpoint applies unchanged (one position per time step).
    path, _ = checkpoint
    model = load_i3d(path)
    videos = _videos(2, frames=16, size=64, seed=3)
    features = model(videos)
    assert features.shape == (2, 400) and np.all(np.isfinite(features))
    assert np.array_equal(features, model(videos))
    assert not np.allclose(features[0], features[1])
