"""Initial noise for the frames of a video: ZS²'s dependency noise model and the references
it is compared with.

Every function takes ``shape = (B, F, ...)`` (batch, frames, then one frame's latent, e.g.
``(C, H, W)``) and a ``torch.Generator``; the draws happen on the generator's device in a
fixed order, so the same generator state gives the same noise whatever ``device`` the result
is moved to.

The dependency noise model is an AR(1) chain over frames,

    eps_0 ~ N(0, I),   eps_i = sqrt(a_i) * eps_(i-1) + sqrt(1 - a_i) * n_i,

whose marginal stays N(0, I) and whose consecutive correlation is ``sqrt(a_i)``. ``a_i`` is
picked so that the authors' divergence statistic between ``eps_i`` and ``eps_(i-1)`` hits a
target ``lam``:

    D(x, prev) = mean(exp(prev) * (prev - x))    (torch.kl_div(x, prev, log_target=True))

This is not a true KL divergence. For ``x = sqrt(a) prev + sqrt(1 - a) n`` it is linear in
``x``: with ``A = mean(exp(prev) * prev)`` and ``B = mean(exp(prev) * n)``,

    D = (1 - sqrt(a)) * A - sqrt(1 - a) * B,

and since ``E[exp(p) p] = e^(1/2)`` and ``E[exp(p) n] = 0`` for standard normals, its
expectation is ``e^(1/2) * (1 - sqrt(a))``: about 1.65 for independent noise, 0 for a still
video. The searches below evaluate ``D`` from ``A`` and ``B`` (two reductions per frame)
rather than composing a tensor per trial; the values are the same.

``lam = 0`` is answered exactly by ``a = 1`` (``D = 0`` only there): every frame shares the
noise and the video is still.

Two properties of the published two-stage search, kept because they are the method's:
stage 1 keeps the candidate whose statistic at ``a = 0`` is closest to ``lam``, which is the
one most aligned with ``exp(prev)``, so the chosen noise is slightly correlated with the
previous frame: the variance comes out about 1% above 1 on 32x32 latents, 0.5% on Stable
Diffusion's 64x64 and 7% on 8x8. And ``D`` averages ``exp(prev)``-weighted values, a
heavy-tailed mean: on latents of a few hundred values or fewer, a slightly larger ``lam``
can make stage 1 pick another candidate and end at a larger ``a``, so there the found
correlation falls with ``lam`` only on average, not for every draw.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple, overload

import torch

from .attention import check_real

__all__ = [
    "DEPENDENCY_METHODS",
    "DependencyNoise",
    "dependency_noise",
    "divergence",
    "expected_correlation",
    "independent_noise",
    "lambda_for_correlation",
    "mixed_noise",
    "noise_statistics",
    "progressive_noise",
    "pyoco_alpha",
]

DEPENDENCY_METHODS = ("two_stage", "random", "analytic")
SQRT_E = math.exp(0.5)

# The published search: 10 random candidates, then 15 steps of the linear search.
RANDOM_CANDIDATES = 10
LINEAR_STEPS = 15
# The single-stage ablation gets the two-stage search's whole budget of statistic
# evaluations, so that the comparison is about the search, not about its length.
RANDOM_ONLY_CANDIDATES = RANDOM_CANDIDATES + LINEAR_STEPS


class DependencyNoise(NamedTuple):
    noise: torch.Tensor  # (B, F, ...)
    alphas: torch.Tensor  # (B, F - 1): a_i of frames 1..F-1; consecutive correlation sqrt(a_i)


def check_lambda(lam: Any, where: str = "lam") -> float:
    value = check_real(lam, where, "a finite number >= 0")
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"{where} must be a finite number >= 0 (0: a still video; about 1.65 and above: "
            f"independent frames), got {lam!r}"
        )
    return value


def check_alpha(alpha: Any, where: str = "alpha") -> float:
    value = check_real(alpha, where, "a finite number >= 0")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{where} must be a finite number >= 0, got {alpha!r}")
    return value


def check_shape(shape: Any, where: str = "shape") -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in shape)
        valid = all(int(d) == d for d in shape)
    except (TypeError, ValueError):
        dims, valid = (), False
    if not valid or len(dims) < 3:
        raise ValueError(f"{where} must be (batch, frames, ...) with at least 3 dimensions, got {shape!r}")
    if any(d < 1 for d in dims):
        raise ValueError(f"{where}: every dimension must be >= 1 (frames < 1 is no video), got {dims}")
    return dims


def divergence(x: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    """The authors' statistic ``mean(exp(prev) * (prev - x))`` per batch element."""
    if x.shape != prev.shape:
        raise ValueError(f"divergence: shapes differ, {tuple(x.shape)} vs {tuple(prev.shape)}")
    x64, prev64 = x.double(), prev.double()
    return (prev64.exp() * (prev64 - x64)).flatten(1).mean(dim=1)


def expected_correlation(lam: float) -> float:
    """``sqrt(a)`` that makes the statistic's expectation equal ``lam``, clipped to [0, 1]."""
    return min(1.0, max(0.0, 1.0 - check_lambda(lam) / SQRT_E))


def pyoco_alpha(correlation: float, kind: str) -> float:
    """PYoCo's ``alpha`` giving consecutive frames the correlation ``correlation``.

    ``mixed``: pairwise correlation ``alpha^2 / (1 + alpha^2)``; ``progressive``:
    ``alpha / sqrt(1 + alpha^2)``. A correlation of 1 needs an infinite alpha, so it is
    capped just below.
    """
    rho = float(correlation)
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"correlation must be in [0, 1], got {correlation!r}")
    rho = min(rho, 1.0 - 1e-9)
    if kind == "mixed":
        return math.sqrt(rho / (1.0 - rho))
    if kind == "progressive":
        return rho / math.sqrt(1.0 - rho * rho)
    raise ValueError(f"kind must be 'mixed' or 'progressive', got {kind!r}")


def _draw(shape, generator, *, uniform: bool = False) -> torch.Tensor:
    device = generator.device if generator is not None else torch.device("cpu")
    if uniform:
        return torch.rand(shape, generator=generator, device=device, dtype=torch.float32)
    return torch.randn(shape, generator=generator, device=device, dtype=torch.float32)


def _finish(noise: torch.Tensor, dtype, device) -> torch.Tensor:
    return noise.to(device=device if device is not None else noise.device, dtype=dtype)


def independent_noise(
    shape, generator: torch.Generator | None = None, *, dtype=torch.float32, device=None
) -> torch.Tensor:
    """Fresh N(0, I) noise for every frame: what an image model samples per frame."""
    dims = check_shape(shape)
    return _finish(_draw(dims, generator), dtype, device)


def mixed_noise(
    shape, alpha: float, generator: torch.Generator | None = None, *, dtype=torch.float32, device=None
) -> torch.Tensor:
    """PYoCo's mixed noise: ``(alpha * shared + own_i) / sqrt(1 + alpha^2)``.

    Every pair of frames has correlation ``alpha^2 / (1 + alpha^2)``.
    """
    dims = check_shape(shape)
    alpha = check_alpha(alpha)
    shared = _draw((dims[0], 1, *dims[2:]), generator)
    own = _draw(dims, generator)
    noise = (alpha * shared + own) / math.sqrt(1.0 + alpha * alpha)
    return _finish(noise, dtype, device)


def progressive_noise(
    shape, alpha: float, generator: torch.Generator | None = None, *, dtype=torch.float32, device=None
) -> torch.Tensor:
    """PYoCo's progressive noise: AR(1) with ``sqrt(a) = alpha / sqrt(1 + alpha^2)``."""
    dims = check_shape(shape)
    alpha = check_alpha(alpha)
    fresh = _draw(dims, generator)
    rho = alpha / math.sqrt(1.0 + alpha * alpha)
    return _finish(_chain(fresh, torch.full((dims[0], dims[1] - 1), rho * rho)), dtype, device)


def _chain(fresh: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """eps_0 = fresh_0, eps_i = sqrt(a_i) eps_(i-1) + sqrt(1 - a_i) fresh_i."""
    frames = [fresh[:, 0]]
    view = (-1,) + (1,) * (fresh.ndim - 2)
    for i in range(1, fresh.shape[1]):
        a = alphas[:, i - 1].to(fresh.device, torch.float64)
        keep, new = a.sqrt().view(view), (1.0 - a).sqrt().view(view)
        frames.append((keep * frames[-1].double() + new * fresh[:, i].double()).float())
    return torch.stack(frames, dim=1)


def _moments(prev: torch.Tensor, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``A = mean(exp(prev) prev)`` per batch element and ``B = mean(exp(prev) n)`` per
    candidate: ``prev`` is (B, N), ``candidates`` (K, B, N)."""
    prev64 = prev.double()
    weight = prev64.exp()
    a_moment = (weight * prev64).mean(dim=-1)
    b_moment = (weight.unsqueeze(0) * candidates.double()).mean(dim=-1)
    return a_moment, b_moment


def _statistic(alpha: float, a_moment: float, b_moment: float) -> float:
    return (1.0 - math.sqrt(alpha)) * a_moment - math.sqrt(1.0 - alpha) * b_moment


def _pick(candidates: torch.Tensor, index: list[int]) -> torch.Tensor:
    return candidates[index, torch.arange(candidates.shape[1], device=candidates.device)]


def _linear_search(a_moment: float, b_moment: float, lam: float, bound: float) -> float:
    """Stage 2 for one batch element: step up while the error improves; on a miss, step
    back by 0.8 of the step and shrink it five-fold. Scalar work, so plain floats."""
    alpha, step = 0.1, 0.1
    for _ in range(LINEAR_STEPS):
        # As published, the search steps past a = 1 whenever the target is below the
        # statistic's value at a = 0.9 (about lam < 0.04, the paper's default 0.01
        # included) and then takes the square root of 1 - a < 0: NaN noise. The search
        # variable may still step past 1, as published, but the statistic is evaluated at
        # a clamped to [0, 1], where D(1) = 0 is well defined, and the result is clamped the
        # same way. Such targets therefore end at a = 1, a still video, not at NaN.
        error = abs(_statistic(min(max(alpha, 0.0), 1.0), a_moment, b_moment) - lam)
        if error <= bound:
            bound = error
            alpha += step
        else:
            alpha -= 0.8 * step
            step *= 0.2
    return min(max(alpha, 0.0), 1.0)


def _two_stage(prev, lam, generator):
    batch, size = prev.shape
    candidates = _draw((RANDOM_CANDIDATES, batch, size), generator)
    a_moment, b_moment = _moments(prev, candidates)
    # Stage 1, random search: the candidate whose statistic as it stands (a = 0) is closest
    # to the target (the first of equals); its error is the bound stage 2 must beat.
    errors = (a_moment.unsqueeze(0) - b_moment - lam).abs()
    bounds, best = errors.min(dim=0)
    best = best.tolist()
    a_list, b_table, bounds = a_moment.tolist(), b_moment.T.tolist(), bounds.tolist()
    alphas = [_linear_search(a_list[i], b_table[i][best[i]], lam, bounds[i]) for i in range(batch)]
    return _pick(candidates, best), torch.tensor(alphas, dtype=torch.float64)


def _random_only(prev, lam, generator):
    batch, size = prev.shape
    candidates = _draw((RANDOM_ONLY_CANDIDATES, batch, size), generator)
    alphas = _draw((RANDOM_ONLY_CANDIDATES, batch), generator, uniform=True).double()
    a_moment, b_moment = _moments(prev, candidates)
    statistic = (1.0 - alphas.sqrt()) * a_moment.unsqueeze(0) - (1.0 - alphas).sqrt() * b_moment
    best = (statistic - lam).abs().argmin(dim=0)
    chosen = alphas.gather(0, best.unsqueeze(0)).squeeze(0)
    return _pick(candidates, best.tolist()), chosen.cpu()


@overload
def dependency_noise(
    shape: Any,
    lam: float,
    method: str = ...,
    generator: torch.Generator | None = ...,
    *,
    dtype: torch.dtype = ...,
    device: torch.device | str | None = ...,
    return_alphas: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def dependency_noise(
    shape: Any,
    lam: float,
    method: str = ...,
    generator: torch.Generator | None = ...,
    *,
    dtype: torch.dtype = ...,
    device: torch.device | str | None = ...,
    return_alphas: Literal[True],
) -> DependencyNoise: ...


@overload
def dependency_noise(
    shape: Any,
    lam: float,
    method: str = ...,
    generator: torch.Generator | None = ...,
    *,
    dtype: torch.dtype = ...,
    device: torch.device | str | None = ...,
    return_alphas: bool,
) -> torch.Tensor | DependencyNoise: ...


def dependency_noise(
    shape,
    lam: float,
    method: str = "two_stage",
    generator: torch.Generator | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    return_alphas: bool = False,
) -> torch.Tensor | DependencyNoise:
    """ZS²'s dependency noise for ``shape = (B, F, ...)`` at target statistic ``lam``.

    ``method``:

    - ``"two_stage"``: the paper's search, per frame and batch element: 10 random
      candidates for ``n_i`` (stage 1), then 15 steps of linear search over ``a_i`` from 0.1
      (stage 2), with ``a`` kept in [0, 1] so the noise is never NaN (see the module doc).
    - ``"random"``: single-stage random search: 25 candidates ``(n_i, a_i)`` with ``a_i``
      uniform in [0, 1), the one whose statistic is closest to ``lam`` kept. No refinement.
    - ``"analytic"``: no search: ``sqrt(a) = 1 - lam / e^(1/2)`` (clipped to [0, 1]), the
      solution of ``E[D] = lam``, for every frame.

    ``return_alphas=True`` returns ``DependencyNoise(noise, alphas)``.
    """
    dims = check_shape(shape)
    lam = check_lambda(lam)
    if method not in DEPENDENCY_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, DEPENDENCY_METHODS))}, got {method!r}")
    batch, frames = dims[0], dims[1]
    first = _draw((batch, *dims[2:]), generator)
    if method == "analytic":
        a = expected_correlation(lam) ** 2
        fresh = torch.cat([first.unsqueeze(1), _draw((batch, frames - 1, *dims[2:]), generator)], dim=1)
        alphas = torch.full((batch, frames - 1), a, dtype=torch.float64)
        noise = _chain(fresh, alphas)
    else:
        search = _two_stage if method == "two_stage" else _random_only
        chain = [first]
        found = []
        view = (-1,) + (1,) * (len(dims) - 2)
        for _ in range(1, frames):
            prev = chain[-1]
            fresh, alpha = search(prev.reshape(batch, -1), lam, generator)
            if lam == 0.0:
                alpha = torch.ones_like(alpha)
            a = alpha.to(prev.device)
            step = a.sqrt().view(view) * prev.double() + (1.0 - a).sqrt().view(view) * fresh.view(prev.shape).double()
            chain.append(step.float())
            found.append(alpha)
        noise = torch.stack(chain, dim=1)
        alphas = torch.stack(found, dim=1) if found else torch.zeros((batch, 0), dtype=torch.float64)
    noise = _finish(noise, dtype, device)
    return DependencyNoise(noise, alphas.cpu()) if return_alphas else noise


def noise_statistics(noise: torch.Tensor) -> dict[str, float]:
    """What a noise model achieved on ``noise`` (B, F, ...): ``std``, each frame's standard
    deviation (over its values) averaged over frames and videos, and ``correlation``, the
    Pearson correlation of consecutive frames' values averaged over the F - 1 pairs and the
    videos (NaN for one frame).

    The searches aim at a statistic, not at a correlation, and pick candidates by it (see
    the module doc), so what they reach is measured here rather than assumed."""
    if not isinstance(noise, torch.Tensor) or noise.ndim < 3:
        raise ValueError(
            f"noise must be a tensor (batch, frames, ...), got {getattr(noise, 'shape', type(noise).__name__)}"
        )
    flat = noise.detach().to("cpu", torch.float64).flatten(2)  # (B, F, N)
    std = float(flat.std(dim=-1, unbiased=False).mean())
    if flat.shape[1] < 2:
        return {"std": std, "correlation": float("nan")}
    centred = flat - flat.mean(dim=-1, keepdim=True)
    here, after = centred[:, :-1], centred[:, 1:]
    corr = (here * after).sum(-1) / (here.square().sum(-1).sqrt() * after.square().sum(-1).sqrt())
    return {"std": std, "correlation": float(corr.mean())}


def _achieved(method: str, lam: float, shape: tuple, seed: int) -> float:
    generator = torch.Generator().manual_seed(seed)
    return noise_statistics(dependency_noise(shape, lam, method, generator))["correlation"]


def lambda_for_correlation(correlation: float, method: str, shape, *, seed: int = 0, steps: int = 24) -> float:
    """The ``lam`` at which ``method`` reaches consecutive-frame ``correlation`` on noise of
    ``shape`` (B, F, ...), so that noise models can be compared at equal dependency.

    ``analytic``: exactly ``e^(1/2) * (1 - correlation)``. The searches: bisection on ``lam``
    in [0, e^(1/2)] of the correlation measured (``noise_statistics``) on one fixed draw of
    ``shape`` from ``seed`` (the same draw at every trial, so the measured curve is a function
    of ``lam`` alone); use a batch of several videos for a steadier answer. The searches'
    correlation falls with ``lam`` on average only (module doc), so the result is the
    bisection's answer on that draw, not an exact inverse.
    """
    rho = check_real(correlation, "correlation", "a number in [0, 1]")
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"correlation must be in [0, 1], got {correlation!r}")
    if method not in DEPENDENCY_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, DEPENDENCY_METHODS))}, got {method!r}")
    if method == "analytic":
        return SQRT_E * (1.0 - rho)
    dims = check_shape(shape)
    if dims[1] < 2:
        raise ValueError(f"shape: {dims} has one frame; a correlation needs two")
    low, high = 0.0, SQRT_E  # correlation ~1 at lam = 0, ~0 at e^(1/2)
    for _ in range(steps):
        mid = 0.5 * (low + high)
        if _achieved(method, mid, dims, seed) > rho:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)
