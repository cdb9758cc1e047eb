import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pytest_ablation.stats.paired import (
    benjamini_hochberg,
    holm,
    mde_factor,
    paired_delta,
    prompts_needed,
    sign_flip_pvalue,
    t_pvalue,
    t_quantile,
    t_sf,
    unit_means,
    units_needed,
)

finite = st.floats(-100, 100, allow_nan=False, allow_infinity=False)
diffs = st.lists(finite, min_size=2, max_size=10)


def test_delta_is_the_mean_over_prompts_of_the_seed_averaged_differences():
    # Two prompts with 3 and 1 samples: each prompt counts once.
    result = paired_delta([1.0, 2.0, 3.0, 10.0], [0.0, 0.0, 0.0, 0.0], units=["a", "a", "a", "b"])
    assert result.delta == pytest.approx((2.0 + 10.0) / 2)
    assert result.n == 2 and result.samples == 4
    assert result.unit_differences == (2.0, 10.0)


def test_t_distribution_matches_known_values():
    assert t_quantile(0.975, 1) == pytest.approx(12.7062047, rel=1e-7)
    assert t_quantile(0.975, 5) == pytest.approx(2.5705818, rel=1e-7)
    assert t_quantile(0.975, 17) == pytest.approx(2.1098155, rel=1e-7)
    assert t_sf(0.0, 4) == pytest.approx(0.5)
    assert t_sf(2.0, 3) + t_sf(-2.0, 3) == pytest.approx(1.0)
    # df = 1 is the Cauchy distribution: P(T > 1) = 1/4.
    assert t_sf(1.0, 1) == pytest.approx(0.25)


def test_interval_is_the_paired_t_interval():
    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 1.0, size=8), rng.normal(0.0, 1.0, size=8)
    result = paired_delta(a, b)
    d = a - b
    half = 2.3646243 * d.std(ddof=1) / math.sqrt(8)  # t(0.975, 7)
    assert result.low == pytest.approx(d.mean() - half, rel=1e-6)
    assert result.high == pytest.approx(d.mean() + half, rel=1e-6)


def test_one_prompt_gives_no_interval_and_no_test():
    result = paired_delta([5.0, 6.0], [1.0, 1.0], units=["only", "only"])
    assert result.n == 1 and result.low is None and result.high is None
    assert result.p_value == 1.0 and result.mde is None
    assert result.beyond(0.0, "above") == 1.0


def test_sign_flip_is_exact_by_enumeration():
    rng = np.random.default_rng(0)
    for n in (1, 3, 5, 7):
        d = rng.normal(0.3, 1.0, size=n)
        sums = [sum(s * abs(x) for s, x in zip(signs, d)) for signs in itertools.product((1, -1), repeat=n)]
        expected = sum(total >= d.sum() - 1e-12 for total in sums) / 2**n
        assert sign_flip_pvalue(d, "greater") == pytest.approx(expected)
        expected_less = sum(total <= d.sum() + 1e-12 for total in sums) / 2**n
        assert sign_flip_pvalue(d, "less") == pytest.approx(expected_less)


def test_sign_flip_smallest_p_is_two_to_the_minus_n():
    assert sign_flip_pvalue([1.0] * 4) == 1 / 16
    assert sign_flip_pvalue([1.0] * 6) == 1 / 64
    assert units_needed(0.025) == 6 and units_needed(0.0125) == 7 and units_needed(0.05) == 5


def test_sign_flip_beyond_the_exact_range_is_a_valid_estimate():
    rng = np.random.default_rng(5)
    d = rng.normal(0.0, 1.0, size=30)
    p = sign_flip_pvalue(d, "greater")
    # Large n: the randomization distribution is close to normal with variance sum(d^2).
    z = d.sum() / math.sqrt((d**2).sum())
    assert p == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)), abs=0.02)


def test_t_pvalue_of_a_constant_difference():
    assert t_pvalue([0.2, 0.2, 0.2], "greater") == 0.0
    assert t_pvalue([0.0, 0.0, 0.0], "greater") == 1.0
    assert t_pvalue([-0.2, -0.2], "greater") == 1.0


def test_too_few_prompts_never_reject_even_with_a_huge_effect():
    for n in range(1, 6):
        result = paired_delta([100.0 + i * 1e-3 for i in range(n)], [0.0] * n)
        assert result.beyond(0.0, "above") >= 2.0**-n > 0.025
        assert result.mde is None


def test_mde_is_the_t_tests_for_many_prompts_and_larger_for_few():
    # The noncentral-t value for n = 40 and the normal approximation agree roughly.
    approx = (1.959964 + 0.841621) / math.sqrt(40)
    assert mde_factor(40, 0.025) == pytest.approx(approx, rel=0.05)
    assert mde_factor(6, 0.025) > mde_factor(8, 0.025) > mde_factor(18, 0.025)
    assert mde_factor(5, 0.025) is None


def test_prompts_needed_is_the_first_n_whose_mde_is_small_enough():
    n = prompts_needed(0.1, 0.3, 0.025)
    assert mde_factor(n, 0.025) * 0.3 <= 0.1 < mde_factor(n - 1, 0.025) * 0.3
    assert prompts_needed(0.1, 0.0, 0.025) == 6
    assert prompts_needed(0.1, 0.0, 0.025, family=2) == 7


def test_holm_and_benjamini_hochberg_against_hand_computed_values():
    p = [0.01, 0.04, 0.03, 0.20]
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.20])
    assert benjamini_hochberg(p) == pytest.approx([0.04, 0.0533333, 0.0533333, 0.20])
    assert holm([]) == [] and benjamini_hochberg([0.5]) == [0.5]


def test_unit_means_keep_first_appearance_order():
    assert unit_means([1.0, 3.0, 10.0, 5.0], ["b", "b", "a", "c"]).tolist() == [2.0, 10.0, 5.0]


# -- invariants of the interval and the tests ------------------------------------------------
@given(diffs, finite)
def test_interval_moves_with_a_shift(xs, shift):
    assume(np.std(xs) > 1e-3)
    base = paired_delta(xs, [0.0] * len(xs))
    moved = paired_delta([x + shift for x in xs], [0.0] * len(xs))
    tol = 1e-7 * (1 + abs(shift) + max(map(abs, xs)))
    assert moved.delta == pytest.approx(base.delta + shift, abs=tol)
    assert moved.low == pytest.approx(base.low + shift, abs=tol)
    assert moved.high == pytest.approx(base.high + shift, abs=tol)
    # A bound moved with the data gives the same test.
    assert moved.beyond(shift + 0.1, "above") == pytest.approx(base.beyond(0.1, "above"), abs=1e-6)


@given(diffs, st.floats(0.01, 100))
def test_interval_scales_and_tests_do_not_change(xs, scale):
    assume(np.std(xs) > 1e-3)
    base = paired_delta(xs, [0.0] * len(xs))
    scaled = paired_delta([x * scale for x in xs], [0.0] * len(xs))
    tol = 1e-7 * scale * (1 + max(map(abs, xs)))
    assert scaled.low == pytest.approx(base.low * scale, abs=tol)
    assert scaled.high == pytest.approx(base.high * scale, abs=tol)
    assert scaled.p_value == pytest.approx(base.p_value, abs=1e-6)
    if base.mde is not None:
        assert scaled.mde == pytest.approx(base.mde * scale, rel=1e-6)


@given(diffs)
def test_interval_and_tests_are_symmetric_under_a_sign_flip(xs):
    assume(np.std(xs) > 1e-3)
    base = paired_delta(xs, [0.0] * len(xs))
    flipped = paired_delta([-x for x in xs], [0.0] * len(xs))
    tol = 1e-7 * (1 + max(map(abs, xs)))
    assert flipped.low == pytest.approx(-base.high, abs=tol)
    assert flipped.high == pytest.approx(-base.low, abs=tol)
    assert flipped.beyond(0.0, "below") == pytest.approx(base.beyond(0.0, "above"), abs=1e-9)
    assert flipped.p_value == pytest.approx(base.p_value, abs=1e-9)


@given(diffs)
def test_interval_contains_the_estimate_and_agrees_with_the_test(xs):
    result = paired_delta(xs, [0.0] * len(xs))
    assert result.low <= result.delta <= result.high
    if result.beyond(0.0, "above") <= result.alpha:
        assert result.low > 0  # a claim that holds has its interval on the claimed side


def test_bad_input():
    with pytest.raises(ValueError, match="equally long"):
        paired_delta([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="empty"):
        paired_delta([], [])
    with pytest.raises(ValueError, match="confidence"):
        paired_delta([1.0], [1.0], confidence=1.5)
    with pytest.raises(ValueError, match="units"):
        paired_delta([1.0, 2.0], [1.0, 2.0], units=["a"])
    with pytest.raises(ValueError, match="finite"):
        paired_delta([float("nan")], [1.0])
