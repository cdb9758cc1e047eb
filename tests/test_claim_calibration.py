"""The claim test keeps its promised error rate at the sample sizes the profiles use.

Simulated worlds, pure numpy: prompt-level differences whose true mean is exactly at the
claim's bound (a claim that holds there is false), and worlds whose true effect is the MDE
(where the claim should hold about 80% of the time). n covers the profiles' prompt counts
(tiny 2, toy 4, sd15 6) and 8 and 18. ``benchmarks/bench_claims.py`` prints the same rates.
"""

import math
import zlib

import numpy as np
import pytest

from pytest_ablation.stats.paired import claim_holds_rows, mde_factor, paired_delta

ALPHA = 0.025
REPS = 4000
# Upper binomial bound of a rate whose truth is at most ALPHA (3 standard errors).
UPPER = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / REPS)


def _differences(shape, rng, n, seeds=2):
    size = (REPS, n)
    if shape == "normal":
        return rng.standard_normal(size)
    if shape == "t3":
        return rng.standard_t(3, size)
    if shape == "exponential metric":
        # Skewed scores, variant drawn like its reference: E1 - E2 averaged over seeds.
        noise = rng.exponential(size=(REPS, n, seeds, 2))
        return (noise[..., 0] - noise[..., 1]).mean(axis=2)
    if shape == "exponential, skewed toward the claim":
        return rng.exponential(size=size) - 1.0
    raise ValueError(shape)


@pytest.mark.parametrize("n", [2, 4, 6, 8, 18])
@pytest.mark.parametrize("shape", ["normal", "t3", "exponential metric", "exponential, skewed toward the claim"])
def test_false_claim_rate_stays_within_the_binomial_bound_of_nominal(shape, n):
    rng = np.random.default_rng(zlib.crc32(f"{shape} {n}".encode()))
    # above_reference() when the true difference is exactly 0: every claim that holds is false.
    rate = claim_holds_rows(_differences(shape, rng, n), ALPHA).mean()
    assert rate <= UPPER, f"{shape}, n={n}: {rate:.2%} false claims, nominal {ALPHA:.1%}"
    if n < 6:
        assert rate == 0.0  # 2**-n > 2.5%: no claim can hold


def test_the_level_is_used_not_wasted_with_many_prompts():
    # Normal differences at n = 18: the test is close to exact (not trivially conservative).
    rng = np.random.default_rng(18)
    rate = claim_holds_rows(rng.standard_normal((REPS, 18)), ALPHA).mean()
    assert ALPHA - 3 * math.sqrt(ALPHA * (1 - ALPHA) / REPS) <= rate <= UPPER


@pytest.mark.parametrize("n", [6, 8, 18])
def test_power_at_the_mde_is_about_80_percent(n):
    factor = mde_factor(n, ALPHA)
    rng = np.random.default_rng(500 + n)
    spread = 0.37
    power = claim_holds_rows(spread * rng.standard_normal((REPS, n)) + factor * spread, ALPHA).mean()
    # Binomial error of this check (3 SE) plus that of the MDE's own fixed draws.
    assert abs(power - 0.8) <= 0.035, f"n={n}: power {power:.1%} at the MDE"
    # Half the MDE is clearly underpowered, twice it nearly always found.
    half = claim_holds_rows(spread * rng.standard_normal((REPS, n)) + factor * spread / 2, ALPHA).mean()
    assert half < 0.5


def test_claim_rows_agree_with_the_reported_delta():
    rng = np.random.default_rng(3)
    rows = rng.normal(0.8, 1.0, size=(300, 7))
    vectorized = claim_holds_rows(rows, ALPHA)
    single = [paired_delta(r, np.zeros(7)).beyond(0.0, "above") <= ALPHA for r in rows]
    assert vectorized.tolist() == single
    assert 0 < vectorized.sum() < 300


def test_null_world_at_the_tiny_profiles_size_establishes_nothing():
    """200 studies of 2 prompts x 2 seeds whose variant is drawn exactly like its reference."""
    rng = np.random.default_rng(12)
    prompt_effect = rng.normal(0.0, 1.0, size=(200, 2, 1))
    variant = prompt_effect + rng.normal(0.0, 0.5, size=(200, 2, 2))
    reference = prompt_effect + rng.normal(0.0, 0.5, size=(200, 2, 2))
    held = 0
    for v, r in zip(variant, reference):
        delta = paired_delta(v.ravel(), r.ravel(), units=[0, 0, 1, 1])
        held += delta.beyond(0.0, "above") <= ALPHA
    assert held == 0
    # One prompt, one seed: never.
    assert paired_delta([1.0], [0.0]).beyond(0.0, "above") > ALPHA
