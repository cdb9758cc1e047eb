"""Adaptive sample size: test claims after each round of prompts, stop when decided.

A study may generate its prompts in rounds: ``first`` units (prompts), then ``step`` more
per round, up to a budget of ``max_units``. After each round (a *look*) every undecided
claim is tested on the unit-level differences gathered so far, and stops with one of three
verdicts:

- ``"supported"``: the one-sided test of the claim rejects its opposite (the mean is beyond
  the bound on the claimed side);
- ``"refuted"``: the mirrored test rejects (the mean is significantly on the other side);
- ``"inconclusive"``: neither by the last look, or stopped early for futility.

Before the last look an undecided claim is ``"continue"``: generate the next round.

Testing after every round at the fixed-n level would inflate the false-claim rate (every
look is another chance to cross by luck), so each look k has its own critical value
``c_k`` on the one-sided paired t statistic, larger at early looks. The boundaries spend
the level ``alpha`` over the looks with the power family ``alpha * (n_k / n_max) ** rho``
(Kim and DeMets; ``rho`` near 3 resembles O'Brien-Fleming's boundaries, near 1 Pocock's):
by look k at most that much of the level has been used.

Why the calibration is exact. A verdict at look k needs both the t statistic beyond
``c_k`` and the sign-flip p-value at most the look's nominal level (below). Both statistics
are unchanged when the differences are scaled, so under normal differences whose true mean
is the bound their joint distribution at all looks depends on neither the mean nor the
spread (they are pivotal): one simulation on standard normal differences calibrates every
study with those look sizes. Look by look, the nominal level is an order statistic of the
combined p-values (the larger of the t and sign-flip ones) of the simulated null studies
not yet stopped, so that the chance of a false supported verdict spent by look k is the
spending function's; fixed seeds make it deterministic, exact up to Monte Carlo error, and
two Monte Carlo standard errors are kept below ``alpha``. Calibrating the verdict rather
than t alone matters at small n, where the sign-flip floor would otherwise leave much of
``alpha`` unused (the claim would then need more units for the same power).

Why the futility stop is non-binding. A claim whose t statistic trails far behind what the
design effect would produce stops as inconclusive (this is where most of the saving at no
effect comes from). The efficacy boundaries are calibrated as if futility never stopped
anything, so a study that ignores a futility stop and goes on keeps its false-claim rate:
futility only removes chances to claim. The futility boundary is then chosen, given the
efficacy boundaries, as aggressive as it can be while the power at the design effect stays
at the requested level. One consequence: a claim heading the wrong way is usually stopped
as inconclusive before it could be refuted, so "refuted" is rare; the futility stop serves
the claim, and a refutation is a by-product.

What the sign-flip requirement adds. As in the fixed-n claim test
(:func:`pytest_ablation.stats.paired.beyond_pvalue`), a verdict needs the exact one-sided
sign-flip (randomization) p-value to be at most the look's nominal level
``t_sf(c_k, n_k - 1)``. The calibration is exact only for normal differences; with heavy
tails or outliers the t statistic alone can cross by accident, whereas the sign-flip test
keeps each look's chance of a false verdict at most its nominal level for any differences
symmetric about the bound. It also rules out looks where too few units exist for any claim
(``2 ** -n_k`` above the look's level): such looks get no efficacy boundary (only a
futility stop), and their share of the level passes to later looks.

The default design effect is the minimum detectable effect (MDE) of the fixed-n claim test
this design replaces, so the sequential design is compared with that test at equal error
and equal power. ``python benchmarks/bench_sequential.py`` prints the savings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from itertools import product
from typing import cast
from collections.abc import Sequence

import numpy as np

from pytest_ablation.stats.paired import (
    DEFAULT_POWER,
    EXACT_SIGN_FLIP_MAX,
    mde_factor,
    sign_flip_pvalue,
    t_pvalue,
    t_quantile,
    t_sf,
    t_statistic,
)

SUPPORTED = "supported"
REFUTED = "refuted"
INCONCLUSIVE = "inconclusive"
CONTINUE = "continue"

# The fixed-n study a design replaces, when not named: the budget is 25% above it.
DEFAULT_BUDGET_RATIO = 1.25
# Alpha spending alpha * (n_k / n_max) ** rho. Of 0.5 to 3, 1.5 saved about the most units
# on average over effects 0 to 2 MDE at 8, 12 and 18 fixed units and alpha 0.025
# (benchmarks/bench_sequential.py); at alpha 0.0125, 1 did better: the sign-flip floor
# blocks more early looks there unless the level is spent earlier.
SPENDING_EXPONENT = 1.5

_CALIBRATION_REPS = 200_000  # null studies for the efficacy boundaries
_CALIBRATION_SEED = 0x5E9_CA1
_POWER_REPS = 40_000  # studies at the design effect for the futility boundary
_POWER_SEED = 0x5E9_B0E
_CHUNK_SUMS = 1 << 15  # sums per batch of rows in the sign-flip count (cache-sized)


@dataclass(frozen=True)
class SequentialDecision:
    """The verdict on one claim at one look.

    ``t`` is the one-sided t statistic of the differences minus the bound, signed so that
    positive values favour the claim. ``p_value`` is the nominal one-sided p-value of the
    test behind the verdict (the larger of the t-test's and the sign-flip test's, as in
    :func:`pytest_ablation.stats.paired.beyond_pvalue`): the claim's test, or the opposite test's
    when the verdict is ``"refuted"``. It is nominal: compare it with ``level``, the look's
    nominal level, not with the study's alpha. ``boundary`` is the look's critical value on
    t (``inf`` at a look that cannot decide); ``futility`` the futility boundary on t.
    """

    verdict: str
    look: int
    n: int
    t: float
    p_value: float
    boundary: float
    level: float
    futility: float


@dataclass(frozen=True)
class SequentialDesign:
    """Look sizes, per-look boundaries on the one-sided t statistic, and what they promise.

    ``looks``: cumulative unit counts. ``alpha``: the one-sided false-claim rate promised
    per claim over all looks (pass ``alpha / m`` for a Bonferroni family of ``m`` claims).
    ``efficacy``: critical values ``c_k``; a claim is supported at look k when
    ``t >= c_k`` and the sign-flip p-value is at most ``t_sf(c_k, n_k - 1)``, refuted when
    the same holds on the opposite side. ``futility``: stop as inconclusive when
    ``t < futility[k]`` (``-inf`` where there is no futility stop, always at the last look).
    ``power`` is the chance of a supported verdict when the true mean is ``effect``
    standard deviations beyond the bound, for normal differences.
    """

    looks: tuple[int, ...]
    alpha: float
    efficacy: tuple[float, ...]
    futility: tuple[float, ...]
    power: float
    effect: float
    fixed_units: int | None = None

    @property
    def max_units(self) -> int:
        return self.looks[-1]

    @property
    def nominal_levels(self) -> tuple[float, ...]:
        """The one-sided level each look tests at (0 where it cannot decide)."""
        return tuple(t_sf(c, n - 1) if math.isfinite(c) else 0.0 for c, n in zip(self.efficacy, self.looks))

    def look_index(self, n: int) -> int:
        """The index of the look taken with ``n`` units; ValueError if none is."""
        if n not in self.looks:
            raise ValueError(
                f"{n} unit differences do not match a look of this design: it looks at "
                f"{', '.join(map(str, self.looks))} units; pass the differences of exactly "
                "the units generated so far"
            )
        return self.looks.index(n)

    def decide(self, diffs: Sequence[float], bound: float = 0.0, side: str = "above") -> SequentialDecision:
        """The verdict at the look that ``len(diffs)`` units make.

        ``side="above"``: the claim is that the mean difference exceeds ``bound``;
        ``"below"``: that it is under ``bound``. The decision concerns this look alone:
        call it after each round, and stop at the first verdict other than ``"continue"``
        (or use :meth:`run`).
        """
        if side not in ("above", "below"):
            raise ValueError(f"side must be 'above' or 'below', got {side!r}")
        d = np.asarray(diffs, dtype=np.float64)
        if d.ndim != 1:
            raise ValueError("diffs must be a flat list of unit-level differences")
        if not np.isfinite(d).all():
            raise ValueError("diffs must be finite numbers")
        k = self.look_index(int(d.size))
        toward_claim = d - bound if side == "above" else bound - d
        n = int(d.size)
        t = t_statistic(toward_claim)
        critical = self.efficacy[k]
        level = t_sf(critical, n - 1) if math.isfinite(critical) else 0.0
        futility = self.futility[k]
        last = k == len(self.looks) - 1

        def decision(verdict: str, p_value: float) -> SequentialDecision:
            return SequentialDecision(
                verdict=verdict, look=k, n=n, t=t, p_value=p_value, boundary=critical, level=level, futility=futility
            )

        claim_flip = sign_flip_pvalue(toward_claim, "greater")
        p_claim = max(t_pvalue(toward_claim, "greater"), claim_flip)
        if t >= critical and claim_flip <= level:
            return decision(SUPPORTED, p_claim)
        if t <= -critical:
            opposite_flip = sign_flip_pvalue(toward_claim, "less")
            if opposite_flip <= level:
                return decision(REFUTED, max(t_pvalue(toward_claim, "less"), opposite_flip))
        if last or t < futility:
            return decision(INCONCLUSIVE, p_claim)
        return decision(CONTINUE, p_claim)

    def run(self, diffs: Sequence[float], bound: float = 0.0, side: str = "above") -> SequentialDecision:
        """Take the looks in order on the first ``n_k`` of ``diffs``; the first decision
        that is not ``"continue"``, or the last look's when ``diffs`` end before one.

        ``len(diffs)`` must be a look: the units generated so far.
        """
        final = self.look_index(len(diffs))
        for k in range(final + 1):
            result = self.decide(list(diffs)[: self.looks[k]], bound, side)
            if result.verdict != CONTINUE:
                return result
        return result


# -- simulation helpers ------------------------------------------------------------------
def _looks_of(first: int, step: int, max_units: int) -> tuple[int, ...]:
    if first < 2:
        raise ValueError(f"first must be at least 2 units (a t statistic needs 2), got {first}")
    if step < 1:
        raise ValueError(f"step must be at least 1 unit, got {step}")
    if max_units < first:
        raise ValueError(f"max_units ({max_units}) must be at least first ({first})")
    looks = list(range(first, max_units + 1, step))
    if looks[-1] != max_units:  # a last, shorter round spends the rest of the budget
        looks.append(max_units)
    return tuple(looks)


def _t_at_looks(rows: np.ndarray, looks: Sequence[int]) -> np.ndarray:
    """t statistics (mean 0) of the first n_k values of every row, shape (rows, looks).

    Computed like _t_statistic (two-pass standard deviation, the same rule for no spread),
    so that simulated verdicts are decide()'s on any data, not only well-scaled draws.
    """
    t = np.empty((rows.shape[0], len(looks)))
    for k, n in enumerate(looks):
        block = rows[:, :n]
        mean = block.mean(axis=1)
        sd = block.std(axis=1, ddof=1)
        spread = (sd > 0.0) & (sd > 1e-12 * np.abs(mean))
        with np.errstate(divide="ignore", invalid="ignore"):
            t[:, k] = np.where(spread, mean / (sd / math.sqrt(n)), np.sign(mean) * np.inf)
    return t


@cache
def _sign_vectors(k: int) -> np.ndarray:
    return np.array(list(product((1.0, -1.0), repeat=k)), dtype=np.float64).reshape(-1, k)


def _sign_flip_hits_rows(rows: np.ndarray) -> np.ndarray:
    """Per row (at most EXACT_SIGN_FLIP_MAX values): how many of the 2**n sign vectors
    give a sum at least the observed one; stats.sign_flip_pvalue("greater") is this over
    2**n. The same count (meeting in the middle, the same tolerance for ties), vectorized."""
    count, n = rows.shape
    half = n // 2
    left_signs, right_signs = _sign_vectors(half), _sign_vectors(n - half)
    hits = np.zeros(count, dtype=np.int64)
    rows_per_chunk = max(1, _CHUNK_SUMS >> (n - half))
    for start in range(0, count, rows_per_chunk):
        chunk = rows[start : start + rows_per_chunk]
        size = len(chunk)
        magnitude = np.abs(chunk)
        scale = magnitude.sum(axis=1, keepdims=True) + 1e-300
        # Scaled to [-1, 1] and shifted apart by 8 per row, one sorted array and one
        # searchsorted count every row's pairs (left + right >= observed - tolerance).
        observed = chunk.sum(axis=1, keepdims=True) / scale
        tolerance = 1e-9
        left = (magnitude[:, :half] @ left_signs.T) / scale if half else np.zeros((size, 1))
        right = np.sort((magnitude[:, half:] @ right_signs.T) / scale, axis=1)
        offset = 8.0 * np.arange(size)[:, None]
        below = np.searchsorted(
            (right + offset).ravel(), ((observed - tolerance - left) + offset).ravel(), side="left"
        ).reshape(left.shape)
        below -= (np.arange(size) * right.shape[1])[:, None]
        hits[start : start + size] = (right.shape[1] - below).sum(axis=1)
    return hits


def _sign_flip_pvalues_rows(rows: np.ndarray) -> np.ndarray:
    rows = np.atleast_2d(rows)
    return cast(np.ndarray, _sign_flip_hits_rows(rows) / 2.0 ** rows.shape[1])


def _sign_flip_holds_rows(rows: np.ndarray, level: float) -> np.ndarray:
    """Per row: is the one-sided ("greater") sign-flip p-value at most ``level``?

    Exactly stats.sign_flip_pvalue's verdict: its count vectorized up to
    EXACT_SIGN_FLIP_MAX units, beyond that stats.sign_flip_pvalue itself, row by row (its
    fixed draw of sign vectors), so that simulations agree with decide().
    """
    rows = np.atleast_2d(rows)
    count, n = rows.shape
    if count == 0 or level <= 0.0 or 2.0**-n > level:
        return np.zeros(count, dtype=bool)
    if n > EXACT_SIGN_FLIP_MAX:
        return np.array([sign_flip_pvalue(row, "greater") <= level for row in rows])
    return cast(np.ndarray, _sign_flip_hits_rows(rows) <= level * 2.0**n)  # hits / 2**n <= level, exactly


def _first_verdicts(
    rows: np.ndarray, looks: Sequence[int], efficacy: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of differences (claim: mean above 0), ignoring futility: the t
    statistics at the looks, the first look with a supported or refuted verdict (len(looks)
    when none) and which (True: supported)."""
    t = _t_at_looks(rows, looks)
    count, looks_count = t.shape
    first = np.full(count, looks_count, dtype=np.int64)
    supported = np.zeros(count, dtype=bool)
    for k, (n, critical) in enumerate(zip(looks, efficacy)):
        if not math.isfinite(critical):
            continue
        level = t_sf(critical, n - 1)
        open_rows = first == looks_count
        for sign, is_supported in ((1.0, True), (-1.0, False)):
            candidates = np.flatnonzero(open_rows & (sign * t[:, k] >= critical))
            if candidates.size == 0:
                continue
            decided = candidates[_sign_flip_holds_rows(sign * rows[candidates, :n], level)]
            first[decided] = k
            supported[decided] = is_supported
    return t, first, supported


def _outcomes(
    t: np.ndarray, first_verdict: np.ndarray, supported: np.ndarray, looks: Sequence[int], futility: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Stopping look and verdict code per row (1 supported, -1 refuted, 0 inconclusive)."""
    count, looks_count = t.shape
    below = t[:, :-1] < np.asarray(futility[:-1])[None, :]
    futile_any = below.any(axis=1)
    first_futile = np.where(futile_any, below.argmax(axis=1), looks_count)
    verdict_first = first_verdict <= first_futile  # a verdict beats futility at its look
    decided = verdict_first & (first_verdict < looks_count)
    stop = np.where(decided, first_verdict, np.minimum(first_futile, looks_count - 1))
    code = np.where(decided, np.where(supported, 1, -1), 0)
    return stop, code


def _futility_boundaries(
    looks: Sequence[int], efficacy: Sequence[float], effect: float, margin: float
) -> tuple[float, ...]:
    """Stop for futility when t trails ``effect * sqrt(n_k)`` (about where t stands when
    the design effect is true) by more than ``margin``. A constant margin stopped more
    null claims, for the same power, than margins widening or narrowing over the looks."""
    n = np.asarray(looks, dtype=np.float64)
    bounds = np.minimum(effect * np.sqrt(n) - margin, np.asarray(efficacy))
    bounds[-1] = -np.inf  # the last look decides anyway: inconclusive
    return tuple(float(b) for b in bounds)


# -- the design -----------------------------------------------------------------------------
@cache
def _efficacy_boundaries(looks: tuple[int, ...], alpha: float, exponent: float) -> tuple[float, ...]:
    """Critical t values per look (``inf`` where no claim can be made), such that null
    studies (standard normal differences) are supported by look k, futility ignored, at
    most ``alpha * (n_k / n_max) ** exponent`` of the time, less the Monte Carlo margin."""
    reps = _CALIBRATION_REPS
    rng = np.random.default_rng([_CALIBRATION_SEED, *looks])
    rows = rng.standard_normal((reps, looks[-1]))
    t = _t_at_looks(rows, looks)
    # Two Monte Carlo standard errors below alpha: the true rate stays at most alpha.
    target = alpha - 2.0 * math.sqrt(alpha * (1.0 - alpha) / reps)
    open_rows = np.ones(reps, dtype=bool)
    crossed = 0
    boundaries = []
    for k, n in enumerate(looks):
        allowance = int(math.floor(target * (n / looks[-1]) ** exponent * reps)) - crossed
        if allowance <= 0:
            boundaries.append(math.inf)
            continue
        level, candidates, pvalues = _look_level(rows, t[:, k], open_rows, n, allowance)
        if level is None:
            # No claim can be established with n units within this look's share of alpha
            # (the sign-flip floor 2**-n is too high): the share passes on to later looks.
            boundaries.append(math.inf)
            continue
        critical = t_quantile(1.0 - level, n - 1)
        now = candidates[pvalues <= t_sf(critical, n - 1)]
        crossed += now.size
        open_rows[now] = False
        boundaries.append(critical)
    return tuple(boundaries)


def _look_level(
    rows: np.ndarray, t: np.ndarray, open_rows: np.ndarray, n: int, allowance: int
) -> tuple[float | None, np.ndarray, np.ndarray]:
    """The largest nominal level at which at most ``allowance`` of the open null rows are
    supported at this look (None when even the smallest possible level admits more),
    with the rows that could be and their p-values (max of the t and sign-flip ones)."""
    order = np.flatnonzero(open_rows)
    order = order[np.argsort(-t[order], kind="stable")]
    # Supported at level l iff max(t p-value, sign-flip p-value) <= l: the level is an
    # order statistic of the combined p-values. Only rows whose t p-value is small can
    # count, so the sign-flip count runs on the top t values, more of them until enough.
    take = min(order.size, allowance + allowance // 4 + 64)
    while True:
        candidates = order[:take]
        pvalues = np.array([t_sf(float(x), n - 1) for x in t[candidates]])
        if n <= EXACT_SIGN_FLIP_MAX:
            pvalues = np.maximum(pvalues, _sign_flip_pvalues_rows(rows[candidates, :n]))
        # (beyond it, t alone: it admits at least the rows both tests do; conservative)
        ranked = np.sort(pvalues)
        everything = take == order.size
        if allowance < ranked.size and (everything or ranked[allowance] <= t_sf(float(t[order[take - 1]]), n - 1)):
            break  # every row left out has a larger t p-value than the level found
        if everything:
            return None, candidates, pvalues
        take = min(order.size, 2 * take)
    above = ranked[allowance]  # rows at or above it must not all be admitted
    below = ranked[ranked < above]
    if below.size == 0:
        return None, candidates, pvalues
    return 0.5 * (float(below[-1]) + float(above)), candidates, pvalues


@cache
def sequential_design(
    first: int,
    step: int,
    max_units: int,
    alpha: float,
    power: float = DEFAULT_POWER,
    effect: float | None = None,
    *,
    fixed_units: int | None = None,
    spending_exponent: float = SPENDING_EXPONENT,
) -> SequentialDesign:
    """The design with looks at ``first``, ``first + step``, ... units and at ``max_units``.

    ``alpha`` is the one-sided false-claim rate per claim over all looks. ``effect`` (in
    standard deviations of the unit-level differences) is the true mean difference, beyond
    the bound, at which a claim is supported with probability ``power``; by default the MDE
    of the fixed-n claim test with ``fixed_units`` units, whose own power there is ``power``.
    ``fixed_units`` defaults to ``max_units / 1.25`` rounded: a budget 25% above the fixed
    study it replaces. Deterministic (fixed seeds) and cached.

    ValueError when the budget cannot reach ``power`` at ``effect`` even without futility
    stops: raise ``max_units`` (or accept a larger effect).
    """
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 0.5), got {alpha}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must lie in (0, 1), got {power}")
    looks = _looks_of(first, step, max_units)
    if fixed_units is None:
        fixed_units = max(2, round(max_units / DEFAULT_BUDGET_RATIO))
    if effect is None:
        effect = mde_factor(fixed_units, alpha, power)
        if effect is None:
            raise ValueError(
                f"{fixed_units} units are too few for a claim at alpha {alpha}: no MDE; "
                "pass effect or a larger fixed_units"
            )
    if effect <= 0:
        raise ValueError(f"effect must be positive, got {effect}")
    efficacy = _efficacy_boundaries(looks, float(alpha), float(spending_exponent))
    if not any(math.isfinite(c) for c in efficacy):
        raise ValueError(f"no look of {looks} can establish a claim at alpha {alpha}")

    rng = np.random.default_rng([_POWER_SEED, *looks])
    rows = rng.standard_normal((_POWER_REPS, max_units)) + effect
    t, first_verdict, supported = _first_verdicts(rows, looks, efficacy)

    def power_with(margin: float) -> float:
        futility = _futility_boundaries(looks, efficacy, effect, margin)
        return float((_outcomes(t, first_verdict, supported, looks, futility)[1] == 1).mean())

    # Two Monte Carlo standard errors above the power asked, so that the true power is
    # not below it by simulation luck.
    goal = power + 2.0 * math.sqrt(power * (1.0 - power) / _POWER_REPS)
    most = power_with(math.inf)
    if most < goal:
        raise ValueError(
            f"looks {looks} reach only {most:.1%} power at effect {effect:.3g} SD "
            f"(asked {power:.0%}) even without futility stops: raise max_units"
        )
    # The smallest margin (the most futility stops) that keeps the power: bisection.
    low, high = 0.0, 1.0
    while power_with(high) < goal:
        low, high = high, 2.0 * high
    if power_with(low) >= goal:
        high = low
    while high - low > 1e-4:
        mid = 0.5 * (low + high)
        if power_with(mid) >= goal:
            high = mid
        else:
            low = mid
    return SequentialDesign(
        looks=looks,
        alpha=float(alpha),
        efficacy=efficacy,
        futility=_futility_boundaries(looks, efficacy, effect, high),
        power=float(power),
        effect=float(effect),
        fixed_units=fixed_units,
    )


def simulate_studies(design: SequentialDesign, diffs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run the design on each row of unit-level differences (the claim: mean above 0).

    ``diffs`` has ``design.max_units`` columns: the units a study would generate, in order.
    Returns the units each study used and its verdict: 1 supported, -1 refuted,
    0 inconclusive. The same verdicts as :meth:`SequentialDesign.run`, vectorized.
    """
    rows = np.atleast_2d(np.asarray(diffs, dtype=np.float64))
    if rows.shape[1] != design.max_units:
        raise ValueError(f"need {design.max_units} differences per study, got {rows.shape[1]}")
    t, first_verdict, supported = _first_verdicts(rows, design.looks, design.efficacy)
    stop, verdict = _outcomes(t, first_verdict, supported, design.looks, design.futility)
    return np.asarray(design.looks)[stop], verdict


def expected_units(
    design: SequentialDesign, effect: float, reps: int, rng: np.random.Generator
) -> tuple[float, float, float]:
    """(mean units used, P(supported), P(refuted)) when the true mean is ``effect`` SD
    beyond the bound (normal differences), by simulating ``reps`` studies."""
    units, verdict = simulate_studies(design, rng.standard_normal((reps, design.max_units)) + effect)
    return float(units.mean()), float((verdict == 1).mean()), float((verdict == -1).mean())
