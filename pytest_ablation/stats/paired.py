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
  observed spread. The observed spread is itself an estimate, so the MDE is too: at 6
  prompts an effect of the printed size is detected with 70% power on average over
  studies, and the printed value lies under the true MDE in 58% of them.
- ``mde_bound`` is the MDE to plan with: the same factor times an upper confidence bound on
  the spread, ``s * sqrt((n - 1) / chi2_quantile(1 - c, n - 1))`` at
  ``c = MDE_BOUND_CONFIDENCE = 0.7``. Simulated (normal differences, 10000 studies per
  n, the true power at each printed bound): the true power at the bound averages 83-85% at
  n = 6, 7, 8, 10, 12 and 18 (the plain MDE: 70-76%), and the bound reaches the true MDE
  (true power >= 80%) in 67-72% of studies, ``c`` by construction up to the simulation
  error of ``mde_factor``. ``c = 0.6`` averages 79-81%, 0.65 81-83%; 0.7 is the smallest
  step of 0.05 that keeps 80% at every n with room for ``mde_factor``'s own error (its
  power at the MDE is 80% within about 1.5 points). At 6 prompts the bound is 0.73-1.77
  times the true MDE (10-90%), the plain MDE 0.57-1.35 times.

A claim about the median (``statistic="median"``) uses the exact sign test
(``sign_test_pvalue``): under H0 "median <= bound" each difference lies beyond the bound
with probability at most 1/2, whatever the shape of the differences, so the count beyond
it is at most Binomial(n, 1/2). It keeps its level without symmetry; its smallest
p-value is ``2**-n`` too, and its exact level at 2.5% is the largest binomial tail
under it (1.56% at n = 6, 0.39% at 8, 1.54% at 18). It answers "do most prompts
improve?", not "does the average improve?".

Skew against the claim is the case the mean test does not cover: when most prompts favour
the variant and a few fail badly while the mean difference is 0 (differences ``c -
LogNormal(0, 1)``), a study of 6-18 prompts often misses the tail and the mean claim
holds in 7-13% of studies instead of 2.5%. ``skew_warning`` flags differences whose mean
lies more than a threshold below their median on the claim's side, in standard
deviations (``skew_against``: (median - mean) / sd. Held to the same rate on symmetric
differences, it flagged about as many of the skewed studies as the L-skewness, more than
the sample skewness, the medcouple or the quartile skewness, and the most of those in
which the mean claim wrongly held).
The threshold at each n is the 95.5% quantile of that statistic for normal and for t3
differences, the larger, so symmetric differences are flagged in at most 5% of studies
(measured 4.1-5.0% at n = 6-18). With the tail against the claim the flag rate is 13-19%
at n = 6, 17-25% at 8 and 33-52% at 18 (1 to 3 seeds). The flag describes the sample,
not the claim: the studies in which the mean claim wrongly holds are mostly those whose
sample missed the tail and so looks unskewed (false claims 1-5% among flagged studies,
7-19% among the others). An unflagged mean claim is therefore no safer; where a metric's
differences are flagged, or are expected to have such a tail, claim the median.

``python benchmarks/bench_claims.py`` measures the error rates and power quoted in the
README (``--skew``: the skewed worlds and the MDE bound); ``tests/test_claim_calibration.py``
and ``tests/test_claim_robustness.py`` check them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from itertools import product
from typing import Any, cast
from collections.abc import Callable, Hashable, Sequence

import numpy as np

DEFAULT_CONFIDENCE = 0.95
DEFAULT_POWER = 0.8
EXACT_SIGN_FLIP_MAX = 22  # up to this many units the sign-flip p-value is exact
SIGN_FLIP_DRAWS = 1 << 16  # beyond it, this many random sign vectors (fixed seed)
# The upper confidence level on the spread behind ``mde_bound``: the smallest multiple of 0.05
# at which the true power at the bound averages >= 80% at every n of 6 to 18, with room for
# the simulation error of ``mde_factor`` (benchmarks/bench_claims.py --skew prints it).
MDE_BOUND_CONFIDENCE = 0.7
SKEW_WARNING_RATE = 0.05  # at most this share of studies with symmetric differences is flagged
# The threshold is the quantile of the statistic at this rate (under 5%, so that the error of
# the fixed draws, about 0.1 point, cannot take the flag rate over SKEW_WARNING_RATE).
_SKEW_CALIBRATION_RATE = 0.045
_MDE_REPLICATES = 4000
_SKEW_REPLICATES = 40_000
_SKEW_SIMULATED_MAX = 100
_SKEW_LIMIT_SCALE = 1.3  # t3's large-n 95% quantile of skew_against is 1.645 * 0.785 / sqrt(n)
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
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
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


def _gamma_series(a: float, x: float) -> float:
    """The regularized lower incomplete gamma P(a, x) by its power series (for x < a + 1)."""
    term = total = 1.0 / a
    denominator = a
    for _ in range(10_000):
        denominator += 1.0
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * 1e-17:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_continued_fraction(a: float, x: float) -> float:
    """The regularized upper incomplete gamma Q(a, x) by its continued fraction (modified
    Lentz; for x >= a + 1, where it converges fast)."""
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return h * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_lower_upper(a: float, x: float) -> tuple[float, float]:
    """``(P(a, x), Q(a, x))``, each computed directly where it is the smaller (no
    cancellation in ``1 - other``)."""
    if x <= 0.0:
        return 0.0, 1.0
    if math.isinf(x):
        return 1.0, 0.0
    if x < a + 1.0:
        lower = _gamma_series(a, x)
        return lower, 1.0 - lower
    upper = _gamma_continued_fraction(a, x)
    return 1.0 - upper, upper


def chi2_cdf(x: float, df: float) -> float:
    """P(X <= x) for the chi-squared distribution with ``df`` degrees of freedom."""
    return _gamma_lower_upper(df / 2.0, x / 2.0)[0]


def chi2_quantile(q: float, df: float) -> float:
    """The ``q`` quantile of the chi-squared distribution with ``df`` degrees of freedom.

    Bisection on the regularized incomplete gamma function, on the lower tail for
    ``q <= 0.5`` and on the upper tail above, so that quantiles far in either tail keep
    their relative precision.
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must lie in (0, 1), got {q}")
    if not df > 0.0:
        raise ValueError(f"df must be positive, got {df}")
    a = df / 2.0
    if q <= 0.5:
        target, tail = q, 0  # P(a, x/2) grows with x
    else:
        target, tail = 1.0 - q, 1  # Q(a, x/2) shrinks with x

    def below_quantile(x: float) -> bool:
        value = _gamma_lower_upper(a, x / 2.0)[tail]
        return value < target if tail == 0 else value > target

    high = max(1.0, df)
    while below_quantile(high):
        high *= 2.0
    low = high
    while low > 1e-300 and not below_quantile(low):
        low /= 2.0
    for _ in range(400):
        mid = 0.5 * (low + high)
        if below_quantile(mid):
            low = mid
        else:
            high = mid
        if high - low <= 1e-15 * high:
            break
    return 0.5 * (low + high)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return cast(np.ndarray, 0.5 * (1.0 + np.vectorize(math.erf)(np.asarray(x, dtype=np.float64) / math.sqrt(2.0))))


# -- tests ---------------------------------------------------------------------------------
def _signs(k: int) -> np.ndarray:
    return np.array(list(product((1.0, -1.0), repeat=k)), dtype=np.float64).reshape(-1, k)


def sign_flip_pvalue(diffs: Sequence[float] | np.ndarray, alternative: str = "greater") -> float:
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
    drawn_hits = 0
    for start in range(0, SIGN_FLIP_DRAWS, 4096):
        signs = rng.choice((-1.0, 1.0), size=(min(4096, SIGN_FLIP_DRAWS - start), n))
        drawn_hits += int(((signs @ magnitude) >= observed - tolerance).sum())
    return (1.0 + drawn_hits) / (1.0 + SIGN_FLIP_DRAWS)


def t_statistic(diffs: Sequence[float] | np.ndarray) -> float:
    """The one-sample t statistic of ``mean(diffs) = 0``: 0.0 with fewer than two values, and
    with no spread the sign of the mean as an infinity (the sign-flip test bounds it anyway)."""
    d = np.asarray(diffs, dtype=np.float64)
    n = d.size
    if n < 2:
        return 0.0
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    if sd == 0.0 or sd <= 1e-12 * abs(mean):
        return math.inf if mean > 0 else -math.inf if mean < 0 else 0.0
    return mean / (sd / math.sqrt(n))


def t_pvalue(diffs: Sequence[float] | np.ndarray, alternative: str = "greater") -> float:
    """The paired t-test's p-value of ``mean(diffs) = 0``; 1.0 with fewer than two values."""
    d = np.asarray(diffs, dtype=np.float64)
    n = d.size
    if n < 2:
        return 1.0
    t = t_statistic(d)
    sd = float(d.std(ddof=1))
    if alternative == "greater":
        return 1.0 if t == 0.0 and sd == 0.0 else t_sf(t, n - 1)
    if alternative == "less":
        return 1.0 if t == 0.0 and sd == 0.0 else t_sf(-t, n - 1)
    if alternative == "two-sided":
        return 1.0 if t == 0.0 else min(1.0, 2.0 * t_sf(abs(t), n - 1))
    raise ValueError(f"alternative must be 'greater', 'less' or 'two-sided', got {alternative!r}")


TIE_TOLERANCE = 1e-12  # relative: a difference this close to the bound counts as equal to it
STATISTICS = ("mean", "median")


def sign_test_pvalue(diffs: Sequence[float], bound: float, side: str) -> float:
    """The exact one-sided sign test of the claim that the median difference is beyond
    ``bound`` on ``side``.

    ``side="above"``: H0 median <= bound, p = P(Binomial(n, 1/2) >= number of differences
    above the bound); ``"below"``: H0 median >= bound, counting those below. A difference
    equal to the bound (within ``TIE_TOLERANCE``, relative) counts as not beyond it: under
    H0 a difference lies strictly beyond the bound with probability at most 1/2 whatever
    mass sits on the bound, so the p-value stays valid with ties. (Dropping ties, the
    textbook way, tests "above and below are equally likely" instead, and can reject a true
    "median <= bound" when many differences equal the bound.) Without differences: 1.0.
    """
    if side not in ("above", "below"):
        raise ValueError(f"side must be 'above' or 'below', got {side!r}")
    d = np.asarray(diffs, dtype=np.float64).ravel()
    n = int(d.size)
    if n == 0:
        return 1.0
    bound = float(bound)
    equal = np.abs(d - bound) <= TIE_TOLERANCE * np.maximum(np.abs(d), abs(bound))
    beyond = ~equal & ((d > bound) if side == "above" else (d < bound))
    return _binomial_half_upper_tail(int(beyond.sum()), n)


def _binomial_half_upper_tail(k: int, n: int) -> float:
    """P(Binomial(n, 1/2) >= k), exactly (integer counts, one rounding at the end)."""
    if k <= 0:
        return 1.0
    # Python divides integers with one correct rounding, however large they are.
    return sum(math.comb(n, j) for j in range(k, n + 1)) / (1 << n)


def beyond_pvalue(diffs: Sequence[float], bound: float, side: str, statistic: str = "mean") -> float:
    """p-value of the claim that the mean (or median) difference is beyond ``bound`` on ``side``.

    ``side="above"``: H0 mean <= bound; ``"below"``: H0 mean >= bound. For the mean, the
    larger of the t-test's and the exact sign-flip test's p-values, so the claim needs both
    to reject. ``statistic="median"``: the exact sign test of the median
    (``sign_test_pvalue``), which keeps its level for any shape of the differences.
    """
    if statistic == "median":
        return sign_test_pvalue(diffs, bound, side)
    if statistic != "mean":
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    alternative = {"above": "greater", "below": "less"}[side]
    shifted = np.asarray(diffs, dtype=np.float64) - bound
    return max(t_pvalue(shifted, alternative), sign_flip_pvalue(shifted, alternative))


def two_sided_pvalue(diffs: Sequence[float] | np.ndarray) -> float:
    """p-value of "the variant differs from its reference" (both tests, as for a claim)."""
    d = np.asarray(diffs, dtype=np.float64)
    return max(t_pvalue(d, "two-sided"), sign_flip_pvalue(d, "two-sided"))


def smallest_pvalue(n: int, statistic: str = "mean") -> float:
    """The smallest one-sided p-value ``n`` units can give: ``2**-n`` for the mean (the
    sign-flip test's) and for the median (the sign test's, all ``n`` beyond the bound)."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    return 2.0**-n


def units_needed(alpha: float) -> int:
    """The fewest units at which a one-sided test at level ``alpha`` can reject at all."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    n = 1
    while smallest_pvalue(n) > alpha:
        n += 1
    return n


# -- skew against a claim -----------------------------------------------------------------
def skew_against_rows(diffs: np.ndarray, side: str) -> np.ndarray:
    """For each row of unit-level differences, how far its mean sits from its median on the
    side opposite to the claim, in standard deviations: ``(median - mean) / sd`` for a
    claim ``above`` a bound, ``(mean - median) / sd`` for one ``below``.

    A large value means most units lie on the claimed side and a few lie far on the other:
    the shape in which the mean tests are too lenient at small ``n``. NaN for rows with
    fewer than three values or no spread.
    """
    if side not in ("above", "below"):
        raise ValueError(f"side must be 'above' or 'below', got {side!r}")
    d = np.atleast_2d(np.asarray(diffs, dtype=np.float64))
    rows, n = d.shape
    if n < 3:
        return np.full(rows, np.nan)
    mean = d.mean(axis=1)
    sd = d.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lean = np.where(sd > 1e-12 * np.abs(d).max(axis=1), (np.median(d, axis=1) - mean) / sd, np.nan)
    return lean if side == "above" else -lean


def skew_against(diffs: Sequence[float], side: str) -> float | None:
    """``skew_against_rows`` of one list of differences; None where it is undefined."""
    value = float(skew_against_rows(np.asarray(diffs, dtype=np.float64).ravel(), side)[0])
    return None if math.isnan(value) else value


@cache
def skew_warning_threshold(n: int) -> float:
    """The value of ``skew_against`` above which ``n`` differences are flagged.

    The ``1 - _SKEW_CALIBRATION_RATE`` quantile of the statistic when the differences are
    symmetric, normal or Student's t with 3 d.f. (the larger of the two), from fixed draws
    (the same on every run) up to ``_SKEW_SIMULATED_MAX`` units; beyond, the large-sample
    95% quantile of the t3 case rounded up, ``_SKEW_LIMIT_SCALE / sqrt(n)``, which lies above
    both. Either way symmetric differences are flagged in at most ``SKEW_WARNING_RATE`` of
    studies.
    """
    if n < 3:
        raise ValueError(f"skewness needs at least three units, got {n}")
    if n > _SKEW_SIMULATED_MAX:
        return _SKEW_LIMIT_SCALE / math.sqrt(n)
    rng = np.random.default_rng(3000 + n)
    symmetric = (rng.standard_normal((_SKEW_REPLICATES, n)), rng.standard_t(3, (_SKEW_REPLICATES, n)))
    return max(float(np.quantile(skew_against_rows(d, "above"), 1.0 - _SKEW_CALIBRATION_RATE)) for d in symmetric)


def skew_warning(diffs: Sequence[float], side: str) -> str | None:
    """A short warning when the differences lean against a claim on ``side``, else None.

    Flags when ``skew_against`` exceeds ``skew_warning_threshold(n)``: symmetric
    differences (normal, t3) are flagged in at most ``SKEW_WARNING_RATE`` of studies. The
    flag describes the sample; it does not make a mean claim safe when absent (see the
    module's notes: the studies in which the mean test errs are mostly those whose sample
    missed the long tail, and so look unskewed).
    """
    lean = skew_against(diffs, side)
    if lean is None or lean <= skew_warning_threshold(len(diffs)):
        return None
    return (
        f"differences skewed against the claim (mean {lean:.2f} sd "
        f"{'below' if side == 'above' else 'above'} the median): the mean test may be "
        f"too lenient; a median claim keeps its level"
    )


# -- power ---------------------------------------------------------------------------------
def _t_power(effect: float, n: int, alpha: float) -> float:
    """Power of the one-sided t-test at level alpha for a standardized effect (noncentral t)."""
    df = n - 1
    critical = t_quantile(1.0 - alpha, df)
    shift = effect * math.sqrt(n)
    # P(Z + shift > critical * sqrt(V / df)), V ~ chi2(df): integrate over V.
    upper = df + 60.0 * math.sqrt(2.0 * df) + 60.0
    v = np.linspace(upper / 4000.0, upper, 4000)
    log_density = (df / 2.0 - 1.0) * np.log(v) - v / 2.0 - (df / 2.0) * math.log(2.0) - math.lgamma(df / 2.0)
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
    allowed = alpha * 2.0**n  # the sign-flip test rejects iff hits <= allowed
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


@cache
def _critical(n: int, alpha: float) -> float:
    return t_quantile(1.0 - alpha, n - 1)


@cache
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


def _bisect(too_small: Callable[[float], bool], low: float, high: float, steps: int) -> tuple[float, float]:
    """``(low, high)`` after ``steps`` halvings of the interval where ``too_small`` turns
    False (it holds at ``low``, not at ``high``)."""
    for _ in range(steps):
        mid = 0.5 * (low + high)
        if too_small(mid):
            low = mid
        else:
            high = mid
    return low, high


@cache
def spread_upper_factor(n: int, confidence: float) -> float:
    """The factor that turns the observed standard deviation of ``n`` normal values into an
    upper confidence bound on the true one: ``sqrt((n - 1) / chi2_quantile(1 - confidence,
    n - 1))``, since ``(n - 1) s**2 / sigma**2`` is chi-squared with ``n - 1`` d.f."""
    if n < 2:
        raise ValueError(f"a spread needs at least two units, got {n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return math.sqrt((n - 1) / chi2_quantile(1.0 - confidence, n - 1))


def mde_bound(
    n: int, spread: float, alpha: float, power: float = DEFAULT_POWER, confidence: float = MDE_BOUND_CONFIDENCE
) -> float | None:
    """A conservative MDE, to plan with: ``mde_factor(n, alpha, power) * spread`` with the
    observed ``spread`` replaced by its one-sided ``confidence`` upper bound.

    The plain MDE inherits the noise of the observed spread (at 6 prompts its 10-90% range
    is about 0.6-1.35 times the true MDE), and an effect of that size is detected with less
    than ``power`` on average. At the default ``confidence`` and ``power`` the true power at
    this bound averages at least 80% over studies (normal differences, n = 6 to 18; see the
    module's notes; another ``power`` is not calibrated), and the share of studies whose
    bound reaches the true MDE is ``confidence``.
    None when ``n`` is too small for the claim test to reject at all.
    """
    factor = mde_factor(n, alpha, power)
    if factor is None:
        return None
    return factor * spread * spread_upper_factor(n, confidence)


def prompts_needed(
    effect: float, spread: float, alpha: float, power: float = DEFAULT_POWER, *, family: int = 1, limit: int = 10_000
) -> int | None:
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
def unit_means(values: Sequence[float] | np.ndarray, units: Sequence[Hashable]) -> np.ndarray:
    """Average ``values`` within each unit (in order of first appearance)."""
    v = np.asarray(values, dtype=np.float64)
    order: dict[Hashable, int] = {}
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
    # The MDE with the spread replaced by its upper confidence bound: an effect this large
    # is detected with at least 80% power on average over studies (see ``mde_bound``).
    mde_bound: float | None = None
    unit_differences: tuple[float, ...] = ()
    unit: str = "prompt"  # what the n units are: "prompt", or "seed" (independent replicates)

    @property
    def alpha(self) -> float:
        """The level of each side of the interval (0.025 for a 95% interval)."""
        return (1.0 - self.confidence) / 2.0

    def beyond(self, bound: float, side: str, statistic: str = "mean") -> float:
        """One-sided p-value of "the mean (or median) difference is beyond ``bound`` on
        ``side``" (see ``beyond_pvalue``)."""
        return beyond_pvalue(self.unit_differences, bound, side, statistic)

    def skew_warning(self, side: str) -> str | None:
        """Whether the unit differences lean against a claim on ``side`` (see ``skew_warning``)."""
        return skew_warning(self.unit_differences, side)

    def to_dict(self) -> dict[str, Any]:
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
            "mde_bound": self.mde_bound,
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
    is two-sided (t and sign-flip tests, the larger); ``mde`` and ``mde_bound`` (at the
    interval's one-sided level) are None when ``n`` is too small for the test to reject at
    all. ``unit`` names what the labels are (reported).
    """
    v = np.asarray(variant, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if v.shape != r.shape or v.ndim != 1:
        raise ValueError(f"paired samples must be two equally long lists, got {v.shape} and {r.shape}")
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
        low = high = spread = mde = conservative_mde = None
        p_value = 1.0
    else:
        spread = float(diffs.std(ddof=1))
        half = t_quantile(1.0 - alpha, n - 1) * spread / math.sqrt(n)
        low, high = min(delta - half, delta), max(delta + half, delta)
        p_value = two_sided_pvalue(diffs)
        factor = mde_factor(n, alpha)
        mde = None if factor is None else factor * spread
        conservative_mde = mde_bound(n, spread, alpha)
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
        mde_bound=conservative_mde,
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
