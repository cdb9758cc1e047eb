"""Fréchet Video Distance: the Fréchet distance between Gaussian fits of two sets of I3D features,
with a bootstrap interval over videos.

FVD is a property of a *set* of videos against a reference set, not of one video: a study
computes one value per variant (``Comparison.set_metric("fvd")``), never a paired delta.

- ``frechet_distance``: ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2). The trace of the
  matrix square root is computed from symmetric eigendecompositions,
  Tr (S1 S2)^1/2 = Tr (S1^1/2 S2 S1^1/2)^1/2, whose eigenvalues are real; the tiny negative
  eigenvalues rounding leaves in a singular covariance are clipped to 0, which is what the
  references' ``sqrtm`` + "discard the imaginary part" amounts to, without sqrtm's
  instability. With fewer videos than feature dimensions the same trace is the nuclear norm
  of the (n1 x n2) cross-product of the centred features, which is exact and much cheaper:
  the bootstrap uses it.
- ``bootstrap``: videos of each set are resampled with replacement (both sets: the
  reference variant's videos and a folder of real videos are samples too), ``resamples``
  times from a fixed seed; the interval is the *basic* (reflected) bootstrap interval,
  2 * FVD - quantiles of the resampled FVDs. FVD is biased upward in the set sizes, and a
  resampled set (with repeated videos) is more so: the percentile interval then lies above
  the estimate and misses the true value; reflecting it corrects that bias to first order.
  Its coverage of the true distance, measured by simulation on Gaussian features with both
  sets sampled (``tests/metrics/test_fvd.py`` checks the second case): 94.5% at 16
  dimensions with 32 or 256 videos per set, 95% at 8 dimensions with 64; 85% at 64
  dimensions with 256 videos; and none with fewer videos than dimensions, where the bias
  outgrows any correction (the percentile interval: 0-25% throughout). With I3D's 400
  dimensions the interval is thus trustworthy only well above ``MIN_VIDEOS``; below it the
  interval says how much the value would move with other videos, not where the true
  distance lies. Cost: one Fréchet distance per resample, a 400x400 eigendecomposition
  pair (or an SVD of the n1 x n2 cross-product when smaller): seconds to a few minutes
  for 1000 resamples on a CPU, depending on the set sizes.
- ``MIN_VIDEOS``: below it a result carries a warning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast
from collections.abc import Sequence

from pytest_ablation.metrics.registry import MetricSpec

if TYPE_CHECKING:
    import numpy as np


# FVD's published protocols use 256 videos per set (the original evaluations, e.g. BAIR's
# 256 test videos) up to 2048 (StyleGAN-V and later). The I3D features have 400 dimensions:
# with fewer videos the covariance estimate is far from full rank, the distance is
# dominated by its upward bias (which shrinks only like 1/N), and values at different N are
# not comparable. 256 is the smallest set size the literature reports FVD at; below it a
# result is flagged.
MIN_VIDEOS = 256
DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class GaussianStats:
    """A Gaussian fit of a feature set: mean (d,), covariance (d, d) with ddof=1, count."""

    mean: np.ndarray
    cov: np.ndarray
    count: int

    @classmethod
    def of(cls, features: np.ndarray) -> GaussianStats:
        import numpy as np

        features = _features(features, "features")
        return cls(features.mean(axis=0), np.cov(features, rowvar=False), len(features))


def _features(features, name: str) -> np.ndarray:
    import numpy as np

    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"{name} must be a (videos, dimensions) array, got shape {features.shape}")
    if len(features) < 2:
        raise ValueError(f"{name}: FVD needs at least 2 videos per set to estimate a covariance, got {len(features)}")
    if not np.all(np.isfinite(features)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return features


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    import numpy as np

    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """Tr (S1 S2)^1/2 for symmetric positive semi-definite S1, S2."""
    import numpy as np

    root = _sqrt_psd(s1)
    middle = root @ s2 @ root
    values = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(np.clip(values, 0.0, None)).sum())


def frechet_distance(mu1, s1, mu2, s2) -> float:
    """Fréchet distance between N(mu1, S1) and N(mu2, S2); >= 0 (rounding below 0 is clipped)."""
    import numpy as np

    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(s1, np.float64), np.asarray(s2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != mu1.shape * 2:
        raise ValueError(
            f"frechet_distance: shapes do not match: means {mu1.shape}, {mu2.shape}; covariances {s1.shape}, {s2.shape}"
        )
    diff = mu1 - mu2
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2)
    return max(0.0, float(value))


def stats_distance(a: GaussianStats, b: GaussianStats) -> float:
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


def feature_distance(x1: np.ndarray, x2: np.ndarray) -> float:
    """The Fréchet distance between the Gaussian fits of two feature sets (ddof=1)."""
    import numpy as np

    x1, x2 = _features(x1, "variant features"), _features(x2, "reference features")
    if x1.shape[1] != x2.shape[1]:
        raise ValueError(f"feature dimensions differ: {x1.shape[1]} and {x2.shape[1]}")
    n1, n2, d = len(x1), len(x2), x1.shape[1]
    if n1 * n2 > d * d:
        return frechet_distance(x1.mean(0), np.cov(x1, rowvar=False), x2.mean(0), np.cov(x2, rowvar=False))
    mu1, mu2 = x1.mean(0), x2.mean(0)
    a1, a2 = x1 - mu1, x2 - mu2
    # S = A^T A / (n - 1): Tr S is the squared Frobenius norm, and the eigenvalues of S1 S2
    # are the squared singular values of A1 A2^T / sqrt((n1 - 1)(n2 - 1)).
    scale = np.sqrt((n1 - 1) * (n2 - 1))
    cross = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum() / scale
    diff = mu1 - mu2
    value = diff @ diff + (a1 * a1).sum() / (n1 - 1) + (a2 * a2).sum() / (n2 - 1) - 2.0 * cross
    return max(0.0, float(value))


def bootstrap(
    x1: np.ndarray,
    x2: np.ndarray,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
    resample_reference: bool = True,
    method: str = "basic",
) -> tuple[float, float, np.ndarray]:
    """``(low, high, resampled values)``: the bootstrap interval of ``feature_distance(x1, x2)``.

    ``method`` "basic" reflects the resampled quantiles about the estimate (the default, see
    the module's docstring); "percentile" takes them as they are.
    """
    import numpy as np

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 2:
        raise ValueError(f"resamples must be an integer >= 2, got {resamples!r}")
    if method not in ("basic", "percentile"):
        raise ValueError(f"method must be 'basic' or 'percentile', got {method!r}")
    x1, x2 = _features(x1, "variant features"), _features(x2, "reference features")
    estimate = feature_distance(x1, x2)
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    for index in range(resamples):
        left = x1[rng.integers(0, len(x1), len(x1))]
        right = x2[rng.integers(0, len(x2), len(x2))] if resample_reference else x2
        values[index] = feature_distance(left, right)
    tail = (1 - confidence) / 2
    q_low, q_high = np.quantile(values, [tail, 1 - tail])
    if method == "percentile":
        return float(q_low), float(q_high), values
    return max(0.0, float(2 * estimate - q_high)), max(0.0, float(2 * estimate - q_low)), values


def small_set_warning(n_variant: int, n_reference: int, minimum: int = MIN_VIDEOS) -> str | None:
    """The warning a result below ``minimum`` videos per set carries, or None."""
    if min(n_variant, n_reference) >= minimum:
        return None
    return (
        f"FVD from {n_variant} variant and {n_reference} reference videos: below {minimum} "
        f"videos per set FVD is biased upward (the 400-d covariance is estimated from too "
        f"few videos) and not comparable across set sizes or with published values"
    )


@dataclass(frozen=True)
class SetMetricResult:
    """A set-level metric of one variant: what ``Comparison.set_metric(name)`` returns.

    ``low``/``high`` is the bootstrap interval (None for the reference set against itself,
    whose value is 0 by definition); ``reference`` says what the set was compared with. The
    interval corrects FVD's upward small-sample bias, so with few videos it may lie below
    ``value`` (down to 0 for two sets of one distribution): it is about the distance between
    the distributions, the value about these videos.
    """

    metric: str
    value: float
    low: float | None
    high: float | None
    confidence: float
    n_variant: int
    n_reference: int
    reference: str
    is_reference: bool
    resamples: int
    seed: int
    warning: str | None

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.low is None or self.high is None else (self.low, self.high)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, entry: dict) -> SetMetricResult:
        return cls(**cast("dict[str, Any]", {name: entry.get(name) for name in cls.__dataclass_fields__}))


def fvd(
    variant_features: np.ndarray,
    reference_features: np.ndarray,
    *,
    reference: str = "reference set",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
    same_set: bool = False,
    minimum: int = MIN_VIDEOS,
) -> SetMetricResult:
    """FVD of a variant's features against a reference's, with its bootstrap interval.

    ``same_set``: the variant *is* the reference set (the study's reference variant against
    itself): the distance is 0 by definition, without an interval.
    """
    x1 = _features(variant_features, "variant features")
    x2 = _features(reference_features, "reference features")
    n1, n2 = len(x1), len(x2)
    if same_set:
        value, low, high = 0.0, None, None
    else:
        value = feature_distance(x1, x2)
        low, high, _ = bootstrap(x1, x2, resamples=resamples, seed=seed, confidence=confidence)
    return SetMetricResult(
        metric="fvd",
        value=value,
        low=low,
        high=high,
        confidence=confidence,
        n_variant=n1,
        n_reference=n2,
        reference=reference,
        is_reference=same_set,
        resamples=resamples,
        seed=seed,
        warning=small_set_warning(n1, n2, minimum),
    )


def features_of(videos: Sequence, device="cpu", *, size: int | None = None) -> np.ndarray:
    """I3D features (N, 400) of uint8 videos (F, 3, H, W) with the registered weights."""
    from pytest_ablation.metrics.backends.i3d import i3d_features

    return i3d_features(device, size=size or feature_size())(list(videos))


# The side frames are resized to before I3D: 224, FVD's standard. Tests of the plumbing may
# lower it (``pytest_ablation.metrics.dimensions.fvd.FEATURE_SIZE = 64`` in a conftest) to run fast on
# a CPU; the size is part of every cached statistic's key, and values at another size are
# not FVD.
FEATURE_SIZE = 224


def feature_size() -> int:
    return int(FEATURE_SIZE)


def evaluate(inp):
    raise TypeError(
        "fvd is a set-level metric: it compares a set of videos with a reference set and has "
        "no value for one video; a study computes it from all the videos of a variant "
        "(comparison.set_metric('fvd')), or call fvd(...) of this module "
        "(pytest_ablation.metrics.dimensions.fvd) directly"
    )


SPEC = MetricSpec(
    name="fvd",
    direction="lower",
    level="set",
    # A set-level metric: one value per variant (its videos against a reference set), never a
    # per-video score or a paired delta. The gate judges it with its bootstrap interval (see
    # gate.py); the tolerance only absorbs what another machine's float rounding moves FVD by
    # for the same videos (well under 1 on FVD's usual 50-1000 scale).
    tolerance=1.0,
    definition=(
        "||mu_v - mu_r||^2 + Tr(S_v + S_r - 2 (S_v S_r)^1/2) of Gaussian fits to I3D logits "
        "(400-d, 224x224, [-1, 1]) of the variant's and the reference set's videos"
    ),
    source="FVD (Unterthiner et al. 2019; google-research frechet_video_distance)",
    backend="I3D Kinetics-400 (weights: PYTEST_ABLATION_WEIGHTS_I3D)",
    needs=(),
    weights=("i3d",),
    version="1",
    evaluate=evaluate,
)
