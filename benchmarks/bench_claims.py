"""How often a claim is wrongly established, and how often a real effect is found.

    python benchmarks/bench_claims.py            # the tables quoted in README, "Writing a study"
    python benchmarks/bench_claims.py --reps 20000

Pure numpy, no models. Three experiments:

1. The null world at the ``tiny`` profile's sample size (2 prompts x 2 seeds): 200 studies
   whose variant is drawn exactly like its reference, with fresh noise; how many
   ``above_reference()`` claims hold under the former rule (95% percentile bootstrap over
   the (prompt, seed) pairs, claim when the interval's low end is above 0) and under the
   claim test (prompt means; t and sign-flip tests at 2.5%, one-sided).
2. False-claim rates of ``above_reference()`` when the true mean difference is exactly 0, at
   the prompt counts of the profiles (2 tiny, 4 toy, 6 sd15) and at 8 and 18, for several
   shapes of the prompt-level differences.
3. Power at the minimum detectable effect (normal differences): about 80% by definition.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_ablation.stats import claim_holds_rows, mde_factor  # noqa: E402

ALPHA = 0.025
PROFILE_PROMPTS = (2, 4, 6, 8, 18)


def null_differences(shape_name: str, rng: np.random.Generator, reps: int, n: int, seeds: int = 2):
    """Prompt-level differences (variant - reference, seeds averaged) with true mean 0."""
    size = (reps, n)
    if shape_name == "normal":
        return rng.standard_normal(size)
    if shape_name == "t3":
        return rng.standard_t(3, size)
    if shape_name == "contaminated":  # 10% of prompts ten times as variable
        return np.where(rng.random(size) < 0.1, 10.0, 1.0) * rng.standard_normal(size)
    if shape_name == "exponential metric":
        # Skewed scores: each sample is a prompt effect plus exponential noise; the variant
        # is drawn like its reference, so the prompt's difference averages seeds of E1 - E2.
        noise = rng.exponential(size=(reps, n, seeds, 2))
        return (noise[..., 0] - noise[..., 1]).mean(axis=2)
    if shape_name == "skewed toward the claim":  # exponential differences, centred
        return rng.exponential(size=size) - 1.0
    if shape_name == "skewed against the claim":
        return 1.0 - rng.exponential(size=size)
    raise ValueError(shape_name)


SYMMETRIC_NULLS = ("normal", "t3", "contaminated", "exponential metric")
SKEWED_NULLS = ("skewed toward the claim", "skewed against the claim")


def false_claim_rate(shape_name: str, n: int, reps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    return float(claim_holds_rows(null_differences(shape_name, rng, reps, n), ALPHA).mean())


def power_at_mde(n: int, reps: int, seed: int) -> float | None:
    factor = mde_factor(n, ALPHA)
    if factor is None:
        return None
    rng = np.random.default_rng(seed)
    return float(claim_holds_rows(rng.standard_normal((reps, n)) + factor, ALPHA).mean())


def bootstrap_rule_holds(samples: np.ndarray, rng: np.random.Generator, resamples: int = 2000) -> bool:
    """The former rule: percentile bootstrap over (prompt, seed) pairs, low end above 0."""
    picks = rng.integers(0, samples.size, size=(resamples, samples.size))
    low = np.quantile(samples[picks].mean(axis=1), 0.025)
    return bool(low > 0)


def null_world(studies: int, seed: int, prompts: int = 2, seeds: int = 2) -> tuple[int, int]:
    """(former rule, claim test): claims holding among ``studies`` null studies."""
    rng = np.random.default_rng(seed)
    former = current = 0
    for _ in range(studies):
        prompt_effect = rng.normal(0.0, 1.0, size=(prompts, 1))
        # Same configuration, fresh noise: variant and reference drawn alike for each prompt.
        variant = prompt_effect + rng.normal(0.0, 0.5, size=(prompts, seeds))
        reference = prompt_effect + rng.normal(0.0, 0.5, size=(prompts, seeds))
        diffs = variant - reference
        former += bootstrap_rule_holds(diffs.ravel(), rng)
        current += int(claim_holds_rows(diffs.mean(axis=1), ALPHA)[0])
    return former, current


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10000, help="replicates per cell (default 10000)")
    parser.add_argument("--studies", type=int, default=200, help="null-world studies (default 200)")
    args = parser.parse_args(argv)

    former, current = null_world(args.studies, seed=12)
    print(f"1. null world, {args.studies} studies of 2 prompts x 2 seeds (tiny):")
    print(f"   former rule (bootstrap over pairs): {former} claims hold ({former / args.studies:.1%})")
    print(f"   claim test (prompt means, t + sign-flip): {current} claims hold ({current / args.studies:.1%})")
    big = 2000
    former_big, _ = null_world(big, seed=13)
    print(f"   former rule over {big} studies: {former_big / big:.1%}")
    one_former, one_current = null_world(big, seed=14, prompts=1, seeds=1)
    print(f"   one prompt, one seed, {big} studies: former {one_former / big:.1%}, "
          f"claim test {one_current / big:.1%}")

    bound = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / args.reps)
    print(f"\n2. false-claim rate of above_reference() at a true difference of 0 "
          f"(nominal {ALPHA:.1%}; {args.reps} replicates, binomial bound {bound:.2%}):")
    header = f"   {'differences':26s}" + "".join(f"  n={n:<5d}" for n in PROFILE_PROMPTS)
    print(header)
    for index, shape_name in enumerate(SYMMETRIC_NULLS + SKEWED_NULLS):
        rates = [false_claim_rate(shape_name, n, args.reps, seed=100 * index + n) for n in PROFILE_PROMPTS]
        print(f"   {shape_name:26s}" + "".join(f"  {r:6.2%}" for r in rates))

    print(f"\n3. power at the MDE (normal differences, {args.reps} replicates):")
    for n in PROFILE_PROMPTS:
        factor = mde_factor(n, ALPHA)
        power = power_at_mde(n, args.reps, seed=7000 + n)
        if power is None:
            print(f"   n={n:<3d} MDE: none (no claim can hold with {n} prompts)")
        else:
            print(f"   n={n:<3d} MDE = {factor:.3f} x spread, power {power:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
