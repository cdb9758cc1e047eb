"""Paired deltas between a variant and its reference: interval, tests, power, adjustments.

The unit of a study is the prompt. A variant and its reference are scored on the same
(prompt, seed) samples; the seeds of one prompt are averaged first, so each prompt gives one
difference ``d_i`` (variant minus reference), and a study of ``n`` prompts is ``n``
independent observations, however many seeds each has. Seeds of one prompt share the
prompt and are correlated: counting them as units would overstate ``n``.

On the prompt-level differences:

- the interval is the paired t-interval of their mean;
- a one-sided test (is the mean beyond a bound?) combines the t-test with the exact
  sign-flip (randomization) test, and rejects only when both do; its p-value is the larger
  of the two. The sign-flip test keeps its level exactly, for any shape of the differences,
  whenever a variant that changes nothing would give differences symmetric about the bound
  (the variant and its reference are then exchangeable within a prompt). Its smallest
  one-sided p-value is ``2**-n``, so with fewer than ``ceil(log2(1 / alpha))`` prompts
  (6 at alpha = 0.025) no claim can be established, and none is. The t-test makes the
  verdict agree with the printed interval: a claim that holds has its interval on the
  claimed side of the bound.
- the minimum detectable effect (MDE) is the smallest true mean difference that this
  combined test detects with 80% power at this ``n``, for normal differences with the
  observed spread.

``python benchmarks/bench_claims.py`` measures the error rates and power quoted in the
README; ``tests/test_claim_calibration.py`` checks them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import Hashable, Sequence

import numpy as np

DEFAULT_CONFIDENCE = 0.95
DEFAULT_POWER = 0.8
EXACT_SIGN_FLIP_MAX = 22  # up to this many units the sign-flip p-value is exact
SIGN_FLIP_DRAWS = 1 << 16  # beyond it, this many random sign vectors (fixed seed)
_MDE_REPLICATES = 4000
_MDE_EXACT_MAX = 16  # beyond it the MDE is the t-test's (the sign-flip test then costs nothing)


# -- distributions ------------------------------------------------------------------------
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = tiny if abs(d) < tiny else d
    d = 1.0 / d
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom."""
    if math.isnan(t):
        return float("nan")
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def t_quantile(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t (bisection on ``t_sf``)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must lie in (0, 1), got {q}")
    if q < 0.5:
        return -t_quantile(1.0 - q, df)
    low, high = 0.0, 1.0
    while t_sf(high, df) > 1.0 - q:
        high *= 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if t_sf(mid, df) > 1.0 - q:
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * max(1.0, high):
            break
    return 0.5 * (low + high)


def _normal_cdf(x):
    return 0.5 * (1.0 + np.vectorize(math.erf)(np.asarray(x, dtype=np.float64) / math.sqrt(2.0)))


# -- tests ---------------------------------------------------------------------------------
def _signs(k: int) -> np.ndarray:
    return np.array(list(product((1.0, -1.0), repeat=k)), dtype=np.float64).reshape(-1, k)


def sign_flip_pvalue(diffs: Sequence[float], alternative: str = "greater") -> float:
    """The sign-flip (randomization) p-value of ``mean(diffs) = 0`` against ``alternative``.

    ``greater``: the mean is above 0; ``less``: below; ``two-sided``. Exact (all ``2**n``
    sign vectors) up to ``EXACT_SIGN_FLIP_MAX`` values, by meeting in the middle; beyond
    that a fixed-seed draw of ``SIGN_FLIP_DRAWS`` sign vectors, counted the conservative way
    ``(1 + hits) / (1 + draws)``.
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim != 1 or d.size == 0:
        raise ValueError("sign_flip_pvalue needs a non-empty list of differences")
    if alternative == "two-sided":
        return min(1.0, 2.0 * min(sign_flip_pvalue(d, "greater"), sign_flip_pvalue(d, "less")))
    if alternative == "less":
        d = -d
    elif alternative != "greater":
        raise ValueError(f"alternative must be 'greater', 'less' or 'two-sided', got {alternative!r}")
    magnitude = np.abs(d)
    observed = float(d.sum())
    tolerance = 1e-9 * (float(magnitude.sum()) + 1e-300)  # sums in another order: same value
    n = d.size
    if n <= EXACT_SIGN_FLIP_MAX:
        half = n // 2
        left = _signs(half) @ magnitude[:half] if half else np.zeros(1)
        right = np.sort(_signs(n - half) @ magnitude[half:])
        # Count pairs with left + right >= observed - tolerance.
        hits = right.size - np.searchsorted(right, observed - tolerance - left, side="left")
        return float(hits.sum()) / float(left.size * right.size)
    rng = np.random.default_rng(0x5EED)
    hits = 0
    for start in range(0, SIGN_FLIP_DRAWS, 4096):
        signs = rng.choice((-1.0, 1.0), size=(min(4096, SIGN_FLIP_DRAWS - start), n))
        hits += int(((signs @ magnitude) >= observed - tolerance).sum())
    return (1.0 + hits) / (1.0 + SIGN_FLIP_DRAWS)


def t_pvalue(diffs: Sequence[float], alternative: str = "greater") -> float:
    """The paired t-test's p-value of ``mean(diffs) = 0``; 1.0 with fewer than two values."""
    d = np.asarray(diffs, dtype=np.float64)
    n = d.size
    if n < 2:
        return 1.0
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    if sd == 0.0 or sd <= 1e-12 * abs(mean):
        # No spread: the sign of the mean decides (the sign-flip test bounds it anyway).
        t = math.inf if mean > 0 else -math.inf if mean < 0 else 0.0
    else:
        t = mean / (sd / math.sqrt(n))
    if alternative == "greater":
        return 1.0 if t == 0.0 and sd == 0.0 else t_sf(t, n - 1)
    if alternative == "less":
        return 1.0 if t == 0.0 and sd == 0.0 else t_sf(-t, n - 1)
    if alternative == "two-sided":
        return 1.0 if t == 0.0 else min(1.0, 2.0 * t_sf(abs(t), n - 1))
    raise ValueError(f"alternative must be 'greater', 'less' or 'two-sided', got {alternative!r}")


def beyond_pvalue(diffs: Sequence[float], bound: float, side: str) -> float:
    """p-value of the claim that the mean difference is beyond ``bound`` on ``side``.

    ``side="above"``: H0 mean <= bound; ``"below"``: H0 mean >= bound. The larger of the
    t-test's and the exact sign-flip test's p-values, so the claim needs both to reject.
    """
    alternative = {"above": "greater", "below": "less"}[side]
    shifted = np.asarray(diffs, dtype=np.float64) - bound
    return max(t_pvalue(shifted, alternative), sign_flip_pvalue(shifted, alternative))


def two_sided_pvalue(diffs: Sequence[float]) -> float:
    """p-value of "the variant differs from its reference" (both tests, as for a claim)."""
    d = np.asarray(diffs, dtype=np.float64)
    return max(t_pvalue(d, "two-sided"), sign_flip_pvalue(d, "two-sided"))


def smallest_pvalue(n: int) -> float:
    """The smallest one-sided p-value ``n`` units can give (the sign-flip test's)."""
    return 2.0 ** -n


def units_needed(alpha: float) -> int:
    """The fewest units at which a one-sided test at level ``alpha`` can reject at all."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    n = 1
    while smallest_pvalue(n) > alpha:
        n += 1
    return n


# -- power ---------------------------------------------------------------------------------
def _t_power(effect: float, n: int, alpha: float) -> float:
    """Power of the one-sided t-test at level alpha for a standardized effect (noncentral t)."""
    df = n - 1
    critical = t_quantile(1.0 - alpha, df)
    shift = effect * math.sqrt(n)
    # P(Z + shift > critical * sqrt(V / df)), V ~ chi2(df): integrate over V.
    upper = df + 60.0 * math.sqrt(2.0 * df) + 60.0
    v = np.linspace(upper / 4000.0, upper, 4000)
    log_density = ((df / 2.0 - 1.0) * np.log(v) - v / 2.0 - (df / 2.0) * math.log(2.0)
                   - math.lgamma(df / 2.0))
    density = np.exp(log_density)
    tail = 1.0 - _normal_cdf(critical * np.sqrt(v / df) - shift)
    return float(np.trapezoid(tail * density, v) / np.trapezoid(density, v))


def claim_holds_rows(diffs: np.ndarray, alpha: float) -> np.ndarray:
    """For each row of unit-level differences: does "the mean is above 0" hold at ``alpha``?

    The claim test of ``beyond_pvalue`` (t and exact sign-flip, one-sided), vectorized over
    rows for simulations: the sign-flip count runs only on rows the t-test rejects.
    """
    diffs = np.atleast_2d(np.asarray(diffs, dtype=np.float64))
    rows, n = diffs.shape
    holds = np.zeros(rows, dtype=bool)
    if n < 2 or smallest_pvalue(n) > alpha:
        return holds
    mean = diffs.mean(axis=1)
    sd = diffs.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(sd > 0, mean / (sd / math.sqrt(n)), np.sign(mean) * np.inf)
    candidates = np.flatnonzero(t > _critical(n, alpha))
    if n > EXACT_SIGN_FLIP_MAX:
        for i in candidates:
            holds[i] = sign_flip_pvalue(diffs[i], "greater") <= alpha
        return holds
    half = n // 2
    left_signs, right_signs = _signs(half), _signs(n - half)
    allowed = alpha * 2.0 ** n  # the sign-flip test rejects iff hits <= allowed
    for i in candidates:
        row = diffs[i]
        magnitude = np.abs(row)
        observed = float(row.sum())
        tolerance = 1e-9 * float(magnitude.sum())
        left = left_signs @ magnitude[:half] if half else np.zeros(1)
        right = np.sort(right_signs @ magnitude[half:])
        hits = right.size * left.size - np.searchsorted(right, observed - tolerance - left).sum()
        holds[i] = hits <= allowed
    return holds


def _combined_power(effect: float, noise: np.ndarray, alpha: float) -> float:
    """Share of the rows of ``noise + effect`` on which the claim test rejects."""
    return float(claim_holds_rows(noise + effect, alpha).mean())


@lru_cache(maxsize=None)
def _critical(n: int, alpha: float) -> float:
    return t_quantile(1.0 - alpha, n - 1)


@lru_cache(maxsize=None)
def mde_factor(n: int, alpha: float, power: float = DEFAULT_POWER) -> float | None:
    """The MDE in units of the prompt-level standard deviation, or None when n is too small.

    The effect at which the claim test (t and sign-flip, one-sided at ``alpha``) rejects
    with probability ``power`` for normal differences. Up to ``_MDE_EXACT_MAX`` units it is
    found by simulation with fixed draws (the same number on every run); beyond, the
    sign-flip test rejects whenever the t-test does, up to simulation error, and the
    noncentral t gives it.
    """
    if n < max(2, units_needed(alpha)):
        return None
    if n > _MDE_EXACT_MAX:
        low, high = _bisect(lambda effect: _t_power(effect, n, alpha) < power, 0.0, 10.0, 60)
        return 0.5 * (low + high)
    noise = np.random.default_rng(1000 + n).standard_normal((_MDE_REPLICATES, n))

    def too_small(effect: float) -> bool:
        return _combined_power(effect, noise, alpha) < power

    high = 1.0
    while too_small(high):
        high *= 2.0
    return _bisect(too_small, 0.0, high, 14)[1]


def _bisect(too_small, low: float, high: float, steps: int) -> tuple[float, float]:
    """``(low, high)`` after ``steps`` halvings of the interval where ``too_small`` turns
    False (it holds at ``low``, not at ``high``)."""
    for _ in range(steps):
        mid = 0.5 * (low + high)
        if too_small(mid):
            low = mid
        else:
            high = mid
    return low, high


def prompts_needed(effect: float, spread: float, alpha: float, power: float = DEFAULT_POWER,
                   *, family: int = 1, limit: int = 10_000) -> int | None:
    """The fewest prompts at which a true mean difference ``effect`` is detected with
    ``power``, when prompt-level differences spread with standard deviation ``spread``."""
    effect = abs(effect)
    if effect == 0.0:
        return None
    level = alpha / family
    first = max(2, units_needed(level))
    if spread == 0.0:
        return first

    def enough(n: int) -> bool:
        factor = mde_factor(n, level, power)
        return factor is not None and factor * spread <= effect

    # Power grows with n: double until enough, then bisect.
    low, high = first - 1, first
    while not enough(high):
        if high >= limit:
            return None
        low, high = high, min(limit, high * 2)
    while high - low > 1:
        mid = (low + high) // 2
        if enough(mid):
            high = mid
        else:
            low = mid
    return high


# -- the paired delta ----------------------------------------------------------------------
def unit_means(values: Sequence[float], units: Sequence[Hashable]) -> np.ndarray:
    """Average ``values`` within each unit (in order of first appearance)."""
    v = np.asarray(values, dtype=np.float64)
    order: dict = {}
    for unit in units:
        order.setdefault(unit, len(order))
    index = np.array([order[u] for u in units], dtype=np.int64)
    totals = np.bincount(index, weights=v, minlength=len(order))
    counts = np.bincount(index, minlength=len(order))
    return totals / counts


@dataclass(frozen=True)
class PairedDelta:
    """A variant's mean against its reference's, over prompts (the units)."""

    variant: float
    reference: float
    delta: float
    low: float | None
    high: float | None
    n: int  # units (prompts)
    confidence: float
    samples: int  # (prompt, seed) samples behind the n units
    spread: float | None  # standard deviation of the unit-level differences
    p_value: float  # two-sided: does the variant differ from its reference?
    mde: float | None  # smallest effect detected with 80% power at this n and spread
    unit_differences: tuple = ()
    unit: str = "prompt"  # what the n units are: "prompt", or "seed" (independent replicates)

    @property
    def alpha(self) -> float:
        """The level of each side of the interval (0.025 for a 95% interval)."""
        return (1.0 - self.confidence) / 2.0

    def beyond(self, bound: float, side: str) -> float:
        """One-sided p-value of "the mean difference is beyond ``bound`` on ``side``"."""
        return beyond_pvalue(self.unit_differences, bound, side)

    def to_dict(self) -> dict:
        return {
            "value": self.variant,
            "reference_value": self.reference,
            "delta": self.delta,
            "ci": [self.low, self.high],
            "n": self.n,
            "n_samples": self.samples,
            "unit": self.unit,
            "confidence": self.confidence,
            "spread": self.spread,
            "p_value": self.p_value,
            "mde": self.mde,
        }


def paired_delta(
    variant: Sequence[float],
    reference: Sequence[float],
    *,
    units: Sequence[Hashable] | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    unit: str = "prompt",
) -> PairedDelta:
    """Mean difference ``variant - reference`` over paired samples, with the prompt as unit.

    ``units`` labels each sample with its unit (its prompt); samples of one unit are
    averaged before anything else. Without ``units`` every sample is its own unit. The
    interval is the paired t-interval of the unit means (none with one unit); ``p_value``
    is two-sided (t and sign-flip tests, the larger); ``mde`` is None when ``n`` is too
    small for the test to reject at all. ``unit`` names what the labels are (reported).
    """
    v = np.asarray(variant, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if v.shape != r.shape or v.ndim != 1:
        raise ValueError(
            f"paired samples must be two equally long lists, got {v.shape} and {r.shape}"
        )
    if v.size == 0:
        raise ValueError("paired samples are empty: a study needs at least one prompt and seed")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if units is None:
        units = list(range(v.size))
    elif len(units) != v.size:
        raise ValueError(f"units must label every sample: {len(units)} labels for {v.size} samples")
    if not (np.isfinite(v).all() and np.isfinite(r).all()):
        raise ValueError("paired samples must be finite numbers")
    diffs = unit_means(v - r, units)
    n = int(diffs.size)
    delta = float(diffs.mean())
    alpha = (1.0 - confidence) / 2.0
    if n < 2:
        low = high = spread = mde = None
        p_value = 1.0
    else:
        spread = float(diffs.std(ddof=1))
        half = t_quantile(1.0 - alpha, n - 1) * spread / math.sqrt(n)
        low, high = min(delta - half, delta), max(delta + half, delta)
        p_value = two_sided_pvalue(diffs)
        factor = mde_factor(n, alpha)
        mde = None if factor is None else factor * spread
    return PairedDelta(
        variant=float(unit_means(v, units).mean()),
        reference=float(unit_means(r, units).mean()),
        delta=delta,
        low=low,
        high=high,
        n=n,
        confidence=confidence,
        samples=int(v.size),
        spread=spread,
        p_value=float(p_value),
        mde=mde,
        unit_differences=tuple(float(x) for x in diffs),
        unit=unit,
    )


# -- multiple comparisons ------------------------------------------------------------------
def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error), in the input's order."""
    p = [float(x) for x in pvalues]
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the input's order."""
    p = [float(x) for x in pvalues]
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for position, i in enumerate(order):
        rank = m - position
        running = min(running, p[i] * m / rank)
        adjusted[i] = min(1.0, running)
    return adjusted
