"""What a study can plan with and where the mean claim needs help.

- ``chi2_quantile`` and the sign test against scipy;
- ``mde_bound``: the true power at the bound a study prints averages at least 80%;
- the median claim (sign test) keeps its level in skewed worlds whose median difference is 0;
- ``skew_warning`` flags few studies whose differences are symmetric and many whose
  differences have a long tail against the claim.

Simulated worlds, pure numpy; seeds differ from those the constants were calibrated with
(``benchmarks/bench_claims.py --skew`` prints the same quantities).
"""

import math
import zlib

import numpy as np
import pytest
from scipy import stats as scipy_stats

from pytest_ablation.stats.paired import (
    MDE_BOUND_CONFIDENCE,
    SKEW_WARNING_RATE,
    beyond_pvalue,
    chi2_cdf,
    chi2_quantile,
    claim_holds_rows,
    mde_bound,
    mde_factor,
    paired_delta,
    sign_test_pvalue,
    skew_against,
    skew_against_rows,
    skew_warning,
    skew_warning_threshold,
    smallest_pvalue,
    spread_upper_factor,
    units_needed,
)

ALPHA = 0.025
REPS = 4000


def _upper(rate: float, reps: int = REPS) -> float:
    """A rate whose truth is at most ``rate`` stays below this (3 standard errors)."""
    return rate + 3 * math.sqrt(rate * (1 - rate) / reps)


# -- the chi-squared quantile ----------------------------------------------------------------
@pytest.mark.parametrize("df", [1, 2, 3, 4.5, 5, 7, 11, 17, 50, 300])
@pytest.mark.parametrize("q", [1e-12, 1e-4, 0.025, 0.3, 0.5, 0.7, 0.975, 1 - 1e-9])
def test_chi2_quantile_matches_scipy(q, df):
    expected = scipy_stats.chi2.ppf(q, df)
    assert chi2_quantile(q, df) == pytest.approx(expected, rel=1e-8)
    assert chi2_cdf(expected, df) == pytest.approx(q, rel=1e-8)


def test_chi2_quantile_rejects_bad_arguments():
    for q in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="q must"):
            chi2_quantile(q, 3)
    with pytest.raises(ValueError, match="df"):
        chi2_quantile(0.5, 0)


# -- the sign test and the median claim ----------------------------------------------------------
def test_sign_test_matches_scipy_binomtest_exactly():
    rng = np.random.default_rng(20_240)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        # Rounded values so that some equal the bound (ties count as not beyond it).
        d = np.round(rng.normal(rng.normal(0, 0.5), 1.0, size=n), 1)
        bound = float(rng.choice([0.0, 0.3, -0.2]))
        above, below = int((d > bound).sum()), int((d < bound).sum())
        expected_above = scipy_stats.binomtest(above, n, 0.5, alternative="greater").pvalue
        expected_below = scipy_stats.binomtest(below, n, 0.5, alternative="greater").pvalue
        assert sign_test_pvalue(d, bound, "above") == pytest.approx(expected_above, rel=1e-12, abs=0)
        assert sign_test_pvalue(d, bound, "below") == pytest.approx(expected_below, rel=1e-12, abs=0)
        assert beyond_pvalue(d, bound, "above", statistic="median") == sign_test_pvalue(d, bound, "above")


def test_sign_test_ties_count_against_the_claim():
    # Three of ten equal the bound, seven above: 7 of 10 beyond, not 7 of 7.
    d = [0.0, 0.0, 0.0] + [0.5] * 7
    assert sign_test_pvalue(d, 0.0, "above") == pytest.approx(176 / 1024)
    # Within the relative tolerance is a tie; just beyond it is not.
    assert sign_test_pvalue([1.0 + 1e-14] * 6, 1.0, "above") == 1.0
    assert sign_test_pvalue([1.0 + 1e-9] * 6, 1.0, "above") == 2.0**-6
    assert sign_test_pvalue([], 0.0, "above") == 1.0
    assert sign_test_pvalue([2.0, 2.0], 2.0, "below") == 1.0
    with pytest.raises(ValueError, match="side"):
        sign_test_pvalue([1.0], 0.0, "beyond")


def test_the_median_claims_smallest_p_value_is_two_to_the_minus_n():
    for n in (1, 5, 6, 9):
        assert smallest_pvalue(n, "median") == smallest_pvalue(n) == 2.0**-n
        assert sign_test_pvalue([1.0] * n, 0.0, "above") == 2.0**-n
    assert units_needed(0.025) == 6
    with pytest.raises(ValueError, match="statistic"):
        smallest_pvalue(6, "mode")
    with pytest.raises(ValueError, match="statistic"):
        beyond_pvalue([1.0, 2.0], 0.0, "above", statistic="mode")


def test_paired_delta_tests_the_median_on_request():
    # Five prompts a little better, one far worse: the mean is below 0, the median above.
    delta = paired_delta([0.1, 0.2, 0.15, 0.12, 0.18, 0.11, -3.0], [0.0] * 7)
    assert delta.delta < 0
    assert delta.beyond(0.0, "above") > 0.5
    assert delta.beyond(0.0, "above", statistic="median") == pytest.approx(8 / 128)
    assert delta.beyond(0.0, "above", "median") == sign_test_pvalue(delta.unit_differences, 0.0, "above")


@pytest.mark.parametrize("n", [6, 8, 18])
@pytest.mark.parametrize("direction", [1, -1])
def test_median_claim_keeps_its_level_in_skewed_worlds_of_median_zero(direction, n):
    # d = 1 - LogNormal(0, 1) has median exactly 0 and a long tail against an above-claim
    # (direction 1) or toward it (-1): every median claim that holds is false.
    rng = np.random.default_rng(zlib.crc32(f"median world {direction} {n}".encode()))
    d = direction * (1.0 - rng.lognormal(0.0, 1.0, size=(REPS, n)))
    held = np.array([sign_test_pvalue(row, 0.0, "above") <= ALPHA for row in d])
    # The exact level of the sign test: the largest binomial tail at most 2.5%.
    level = max(p for p in (scipy_stats.binom.sf(k - 1, n, 0.5) for k in range(n + 1)) if p <= ALPHA)
    assert held.mean() <= _upper(ALPHA)
    assert abs(held.mean() - level) <= 3 * math.sqrt(level * (1 - level) / REPS) + 1e-9
    # The mean claim in the world with the tail against it (mean < 0 there) would be no guide:
    # the median claim is the one that answers "do most prompts improve?".


# -- the conservative MDE --------------------------------------------------------------------------
@pytest.mark.parametrize("n", [6, 8, 12])
def test_true_power_at_the_printed_bound_averages_at_least_80_percent(n):
    rng = np.random.default_rng(zlib.crc32(f"bound power {n}".encode()))
    sigma = 0.37
    spreads = (sigma * rng.standard_normal((REPS, n))).std(axis=1, ddof=1)
    bounds = np.array([mde_bound(n, s, ALPHA) for s in spreads])
    # One fresh study at each printed bound: its claim holds with the true power there.
    found = claim_holds_rows(sigma * rng.standard_normal((REPS, n)) + bounds[:, None], ALPHA)
    assert found.mean() >= 0.8 - 3 * math.sqrt(0.8 * 0.2 / REPS), f"n={n}: {found.mean():.1%}"
    # The bound reaches the MDE of the true spread in MDE_BOUND_CONFIDENCE of studies.
    share = (bounds >= mde_factor(n, ALPHA) * sigma).mean()
    c = MDE_BOUND_CONFIDENCE
    assert abs(share - c) <= 3 * math.sqrt(c * (1 - c) / REPS)


def test_the_plain_mde_falls_short_at_six_prompts():
    # What mde_bound corrects: power at the MDE of the observed spread averages well under 80%.
    rng = np.random.default_rng(6061)
    spreads = rng.standard_normal((REPS, 6)).std(axis=1, ddof=1)
    plain = mde_factor(6, ALPHA) * spreads
    found = claim_holds_rows(rng.standard_normal((REPS, 6)) + plain[:, None], ALPHA)
    assert found.mean() < 0.75


@pytest.mark.slow
def test_paired_delta_reports_the_bound_at_the_intervals_level():
    rng = np.random.default_rng(8)
    a, b = rng.normal(1.0, 1.0, size=8), rng.normal(0.0, 1.0, size=8)
    result = paired_delta(a, b)
    assert result.mde_bound == pytest.approx(result.mde * spread_upper_factor(8, MDE_BOUND_CONFIDENCE))
    assert result.mde_bound > result.mde
    assert result.to_dict()["mde_bound"] == result.mde_bound
    wider = paired_delta(a, b, confidence=0.99)  # alpha 0.005: a larger MDE
    assert wider.mde_bound == pytest.approx(mde_bound(8, wider.spread, 0.005))
    assert wider.mde_bound > result.mde_bound
    assert paired_delta([1.0] * 5, [0.0] * 5).mde_bound is None  # too few prompts to claim
    assert paired_delta([1.0], [0.0]).mde_bound is None
    assert mde_bound(5, 1.0, ALPHA) is None


def test_spread_upper_factor_is_the_chi_squared_bound():
    factor = spread_upper_factor(6, 0.9)
    assert factor == pytest.approx(math.sqrt(5 / scipy_stats.chi2.ppf(0.1, 5)), rel=1e-9)
    assert spread_upper_factor(6, 0.5) < factor  # more confidence, a higher bound
    with pytest.raises(ValueError):
        spread_upper_factor(1, 0.7)


# -- the skew warning ------------------------------------------------------------------------------
SYMMETRIC_PROMPTS = [6, 7, 8, 10, 12, 18]


@pytest.mark.parametrize("n", SYMMETRIC_PROMPTS)
@pytest.mark.parametrize("shape", ["normal", "t3"])
def test_symmetric_differences_are_rarely_flagged(shape, n):
    rng = np.random.default_rng(zlib.crc32(f"symmetric flag {shape} {n}".encode()))
    d = rng.standard_normal((REPS, n)) if shape == "normal" else rng.standard_t(3, (REPS, n))
    for side in ("above", "below"):
        rate = (skew_against_rows(d, side) > skew_warning_threshold(n)).mean()
        assert rate <= _upper(SKEW_WARNING_RATE), f"{shape}, n={n}, {side}: {rate:.1%} flagged"


def _skewed_against(rng, n, seeds, seed_noise=0.5):
    """Prompt differences c - LogNormal(0, 1) with mean 0, plus seed noise averaged over seeds."""
    tail = math.exp(0.5) - rng.lognormal(0.0, 1.0, size=(REPS, n))
    return tail + rng.normal(0.0, seed_noise * math.sqrt(2.0 / seeds), size=(REPS, n))


def test_a_long_tail_against_the_claim_is_flagged_often():
    rng = np.random.default_rng(181_818)
    d = _skewed_against(rng, 18, 3)
    flagged = skew_against_rows(d, "above") > skew_warning_threshold(18)
    assert flagged.mean() >= 0.4
    # The same differences against a claim below the reference lean toward it: seldom flagged.
    assert (skew_against_rows(d, "below") > skew_warning_threshold(18)).mean() <= SKEW_WARNING_RATE
    # Few prompts: flagged clearly more often than symmetric differences are.
    small = _skewed_against(rng, 6, 3)
    assert (skew_against_rows(small, "above") > skew_warning_threshold(6)).mean() >= 0.12


def test_skew_warning_agrees_with_the_row_statistic():
    rng = np.random.default_rng(77)
    rows = np.concatenate([_skewed_against(rng, 8, 2)[:150], rng.standard_normal((150, 8))])
    vectorized = skew_against_rows(rows, "above") > skew_warning_threshold(8)
    single = [skew_warning(row, "above") is not None for row in rows]
    assert vectorized.tolist() == single
    assert 0 < vectorized.sum() < rows.shape[0]


def test_skew_warning_text_and_edge_cases():
    d = [0.5, 0.6, 0.55, 0.45, 0.5, -4.0]
    text = skew_warning(d, "above")
    assert text is not None and "skewed against the claim" in text and "median claim" in text
    assert skew_warning(d, "below") is None
    assert skew_against(d, "above") == pytest.approx(skew_against([-x for x in d], "below"))  # mirror
    assert paired_delta(d, [0.0] * 6).skew_warning("above") == text
    assert skew_warning([1.0, 2.0], "above") is None  # too few values to speak of shape
    assert skew_warning([0.3] * 6, "above") is None  # no spread
    with pytest.raises(ValueError, match="side"):
        skew_against(d, "sideways")
