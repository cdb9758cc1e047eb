"""A study's declared family keeps its promise through the plugin's own decision path.

4 null variants share one reference (8 prompts x 2 seeds); each declares ``above_reference()``.
A supported claim is false. ``benchmarks/bench_family.py`` prints the same rates with more
studies, and the rate of the per-test decision for comparison.
"""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

ALPHA = 0.025
REPS = 400


def _bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_family.py"
    spec = importlib.util.spec_from_file_location("bench_family", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_four_null_variants_give_a_false_supported_claim_in_at_most_alpha_of_studies():
    one, _ = _bench().false_claim_rates(REPS, 4242, declared=True)
    assert one <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / REPS)


def test_a_declared_claim_is_decided_at_alpha_over_the_family_whatever_else_ran():
    bench = _bench()
    rng = np.random.default_rng(7)
    reference, arms, labels = bench.null_study(rng, 4, 8, 2)
    # A variant far above its reference: its verdict and adjusted p are those of Bonferroni
    # over the 4 declared claims, computed from its own p-value alone.
    arms[0] += 3.0
    from pytest_ablation.stats.claims import DeclaredClaim
    from pytest_ablation.stats.expectations import ClaimSet, Expectation

    family = tuple(DeclaredClaim(f"v{k}", bench.METRIC, "above_reference") for k in range(4))
    claims = ClaimSet(family_size=4)
    expectation = Expectation(
        bench.comparison("v0", arms[0], reference, labels), bench.METRIC, claims=claims, declared=family[:1]
    )
    expectation._check("above_reference", 0.0)
    claims.decide()
    [(_, _, _, outcome)] = claims.checked
    assert outcome["family"] == "declared" and outcome["family_size"] == 4
    assert outcome["p_adjusted"] == pytest.approx(min(1.0, 4 * outcome["p_value"]))
    assert outcome["verdict"] == "supported"
    assert outcome["level"] == pytest.approx(ALPHA / 4)
