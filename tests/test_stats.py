import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_ablation.stats import paired_delta

values = st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=12)


def test_delta_is_the_mean_paired_difference():
    result = paired_delta([1.0, 2.0, 4.0], [0.5, 1.0, 1.0], seed=0)
    assert result.delta == pytest.approx(np.mean([0.5, 1.0, 3.0]))
    assert result.variant == pytest.approx(7 / 3)
    assert result.reference == pytest.approx(2.5 / 3)
    assert result.n == 3


def test_interval_is_reproducible_and_seed_dependent():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=20), rng.normal(size=20)
    first, again = paired_delta(a, b, seed=7), paired_delta(a, b, seed=7)
    other = paired_delta(a, b, seed=8)
    assert (first.low, first.high) == (again.low, again.high)
    assert (first.low, first.high) != (other.low, other.high)


def test_interval_matches_an_independent_bootstrap():
    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 1.0, size=30), rng.normal(0.0, 1.0, size=30)
    result = paired_delta(a, b, seed=11, resamples=4000)
    diffs = a - b
    # A normal-theory interval of the mean: the bootstrap's should be close to it.
    half = 1.96 * diffs.std(ddof=1) / np.sqrt(diffs.size)
    assert result.low == pytest.approx(diffs.mean() - half, abs=0.15)
    assert result.high == pytest.approx(diffs.mean() + half, abs=0.15)


def test_pairing_removes_shared_variation():
    # Prompts differ wildly, the variant adds a constant: a paired interval is tight.
    base = np.array([0.0, 50.0, -30.0, 80.0, 5.0])
    result = paired_delta(base + 1.0, base, seed=0)
    assert result.low == pytest.approx(1.0) and result.high == pytest.approx(1.0)


@given(values, st.integers(0, 2**32))
def test_interval_contains_the_estimate(xs, seed):
    ys = [x * 0.5 for x in xs]
    result = paired_delta(xs, ys, seed=seed)
    assert result.low <= result.delta <= result.high


def test_bad_input():
    with pytest.raises(ValueError, match="equally long"):
        paired_delta([1.0, 2.0], [1.0], seed=0)
    with pytest.raises(ValueError, match="empty"):
        paired_delta([], [], seed=0)
    with pytest.raises(ValueError, match="confidence"):
        paired_delta([1.0], [1.0], seed=0, confidence=1.5)
