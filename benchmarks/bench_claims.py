"""How often a claim is wrongly established, and how often a real effect is found.

    python benchmarks/bench_claims.py            # the tables quoted in README, "Writing a study"
    python benchmarks/bench_claims.py --reps 20000
    python benchmarks/bench_claims.py --skew     # only experiments 4 and 5

Pure numpy, no models. Five experiments:

1. The null world at the ``tiny`` profile's sample size (2 prompts x 2 seeds): 200 studies
   whose variant is drawn exactly like its reference, with fresh noise; how many
   ``above_reference()`` claims hold under the former rule (95% percentile bootstrap over
   the (prompt, seed) pairs, claim when the interval's low end is above 0) and under the
   claim test (prompt means; t and sign-flip tests at 2.5%, one-sided).
2. False-claim rates of ``above_reference()`` when the true mean difference is exactly 0, at
   the prompt counts of the profiles (2 tiny, 4 toy, 6 sd15) and at 8 and 18, for several
   shapes of the prompt-level differences.
3. Power at the minimum detectable effect (normal differences): about 80% by definition.
4. Skewed differences whose mean is exactly 0, so that every ``above_reference()`` claim of
   the mean is false: most prompts favour the variant and a few fail badly (a long tail
   against the claim, ``d = c - LogNormal(0, 1)``), or its mirror (the tail toward the
   claim). Each (prompt, seed) sample is scored with normal seed noise, and the seeds of a
   prompt are averaged before the test. Per world: the mean claim's false-claim rate,
   among the studies ``skew_warning`` flags and those it does not, and the flag rate; the
   median claim's false-claim rate, in the same world shifted so that its median (not its
   mean) is 0. Then the flag rate when the differences are symmetric.
5. The conservative MDE (``mde_bound``): the true power, at the bound a study prints, of the
   claim test, averaged over studies, and the share of studies whose bound reaches the true
   MDE (true power >= 80%); the plain MDE for comparison.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_ablation.stats.paired import (
    MDE_BOUND_CONFIDENCE,
    SKEW_WARNING_RATE,
    claim_holds_rows,
    mde_bound,
    mde_factor,
    sign_test_pvalue,
    skew_against_rows,
    skew_warning_threshold,
)

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


# -- 4. skew against the claim -------------------------------------------------------------
SKEW_PROMPTS = (6, 8, 18)
SKEW_SEEDS = (1, 2, 3)
SEED_NOISE = 0.5  # standard deviation of one sample's seed noise, variant and reference alike
LOGNORMAL_MEAN = math.exp(0.5)  # mean of LogNormal(0, 1); its median is 1
SYMMETRIC_FLAG_PROMPTS = (6, 7, 8, 10, 12, 18)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def median_of_tail_plus_noise(direction: int, noise_sd: float) -> float:
    """The median of ``direction * (-LogNormal(0, 1)) + Normal(0, noise_sd)``, by quadrature
    over the lognormal's normal variable and bisection (numpy only)."""
    z = np.linspace(-9.0, 9.0, 6001)
    weight = np.exp(-0.5 * z * z)
    weight /= weight.sum()
    tail = -direction * np.exp(z)

    def cdf(x: float) -> float:
        if noise_sd == 0.0:
            return float(weight[tail <= x].sum())
        return float((weight * _normal_cdf((x - tail) / noise_sd)).sum())

    low, high = -50.0, 50.0
    for _ in range(80):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if cdf(mid) < 0.5 else (low, mid)
    return 0.5 * (low + high)


def skewed_study_differences(
    direction: int, centre: str, rng: np.random.Generator, reps: int, n: int, seeds: int
) -> np.ndarray:
    """Prompt-level differences of ``reps`` studies of ``n`` prompts x ``seeds`` seeds.

    A prompt's true difference is ``direction * (c - LogNormal(0, 1))``: direction +1 puts
    the long tail against an ``above_reference()`` claim (most prompts a little better, a
    few far worse), -1 toward it. Every (prompt, seed) sample of the variant and of the
    reference is the prompt's quality plus its own normal seed noise; the seeds of a prompt
    are averaged. ``centre="mean"`` makes the mean of the averaged difference exactly 0,
    ``"median"`` its median.
    """
    quality = rng.normal(0.0, 1.0, size=(reps, n, 1))
    true_difference = direction * -rng.lognormal(0.0, 1.0, size=(reps, n, 1))
    reference = quality + rng.normal(0.0, SEED_NOISE, size=(reps, n, seeds))
    variant = quality + true_difference + rng.normal(0.0, SEED_NOISE, size=(reps, n, seeds))
    differences = (variant - reference).mean(axis=2)
    if centre == "mean":
        return differences + direction * LOGNORMAL_MEAN
    averaged_noise_sd = SEED_NOISE * math.sqrt(2.0 / seeds)
    return differences - median_of_tail_plus_noise(direction, averaged_noise_sd)


def median_claim_holds(differences: np.ndarray) -> np.ndarray:
    """Does "the median difference is above 0" hold at ALPHA, per row (the sign test)?"""
    return np.array([sign_test_pvalue(row, 0.0, "above") <= ALPHA for row in differences])


def flagged(differences: np.ndarray) -> np.ndarray:
    n = differences.shape[1]
    return skew_against_rows(differences, "above") > skew_warning_threshold(n)


def skew_experiment(reps: int) -> None:
    print(
        f"\n4. skewed prompt differences, true mean difference 0 (every mean claim is false); "
        f"{reps} studies per cell,\n   seed noise sd {SEED_NOISE} per sample; flag: skew_warning "
        f"(at most {SKEW_WARNING_RATE:.0%} of studies with symmetric differences)"
    )
    print(
        "   median claim: the same world shifted to median difference 0 (there every median "
        "claim is false;\n   the sign test's exact level is P(Bin(n, 1/2) >= k), the largest "
        "one <= 2.5%: 1.56% at n=6, 0.39% at 8, 1.54% at 18)"
    )
    print(
        f"   {'long tail':8s} {'n':>3s} {'seeds':>5s}  {'mean claim':>10s}  {'| flagged':>9s}  "
        f"{'| unflagged':>11s}  {'flag rate':>9s}  {'median claim (median-0 world)':>29s}"
    )
    for d_index, (label, direction) in enumerate((("against", 1), ("toward", -1))):
        for n in SKEW_PROMPTS:
            for seeds in SKEW_SEEDS:
                seed = 40_000 + 1000 * d_index + 10 * n + seeds
                rng = np.random.default_rng(seed)
                d = skewed_study_differences(direction, "mean", rng, reps, n, seeds)
                holds, flag = claim_holds_rows(d, ALPHA), flagged(d)
                among_flagged = holds[flag].mean() if flag.any() else float("nan")
                among_unflagged = holds[~flag].mean() if (~flag).any() else float("nan")
                median_d = skewed_study_differences(direction, "median", rng, reps, n, seeds)
                median_rate = median_claim_holds(median_d).mean()
                print(
                    f"   {label:8s} {n:3d} {seeds:5d}  {holds.mean():10.2%}  {among_flagged:9.2%}  "
                    f"{among_unflagged:11.2%}  {flag.mean():9.2%}  {median_rate:29.2%}"
                )
    print(f"   flag rate with symmetric differences (nominal at most {SKEW_WARNING_RATE:.0%}):")
    print(f"   {'differences':12s}" + "".join(f"  n={n:<5d}" for n in SYMMETRIC_FLAG_PROMPTS))
    for s_index, shape_name in enumerate(("normal", "t3")):
        rates = []
        for n in SYMMETRIC_FLAG_PROMPTS:
            rng = np.random.default_rng(50_000 + 100 * s_index + n)
            rates.append(flagged(null_differences(shape_name, rng, reps, n)).mean())
        print(f"   {shape_name:12s}" + "".join(f"  {r:6.2%}" for r in rates))


# -- 5. the conservative MDE ---------------------------------------------------------------
BOUND_PROMPTS = (6, 7, 8, 10, 12, 18)


def true_mde(n: int, reps: int, seed: int) -> float:
    """The effect (in units of sigma) at which the claim test has 80% power, by bisection
    on fresh draws, independent of ``mde_factor``'s own (searched within 20% of it)."""
    noise = np.random.default_rng(seed).standard_normal((reps, n))
    low, high = 0.8 * mde_factor(n, ALPHA), 1.25 * mde_factor(n, ALPHA)
    for _ in range(9):
        mid = 0.5 * (low + high)
        if claim_holds_rows(noise + mid, ALPHA).mean() < 0.8:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def bound_experiment(reps: int) -> None:
    print(
        f"\n5. power at the MDE a study prints (normal differences, sigma 1; {reps} studies per n; "
        f"true power by one fresh study at each printed value);\n   mde_bound at confidence "
        f"{MDE_BOUND_CONFIDENCE} on the spread, the plain MDE (observed spread) for comparison:"
    )
    print(
        f"   {'n':>3s}  {'true MDE':>8s}  {'bound: mean power':>17s}  {'share >= 80%':>12s}  "
        f"{'bound / true MDE 10-90%':>23s}  {'plain: mean power':>17s}  {'share >= 80%':>12s}"
    )
    for n in BOUND_PROMPTS:
        rng = np.random.default_rng(60_000 + n)
        spreads = rng.standard_normal((reps, n)).std(axis=1, ddof=1)
        bounds = np.array([mde_bound(n, s, ALPHA) for s in spreads])
        plain = mde_factor(n, ALPHA) * spreads
        bound_power = claim_holds_rows(rng.standard_normal((reps, n)) + bounds[:, None], ALPHA).mean()
        plain_power = claim_holds_rows(rng.standard_normal((reps, n)) + plain[:, None], ALPHA).mean()
        truth = true_mde(n, max(reps, 10_000), seed=61_000 + n)
        low, high = np.quantile(bounds / truth, [0.1, 0.9])
        print(
            f"   {n:3d}  {truth:8.3f}  {bound_power:17.1%}  {(bounds >= truth).mean():12.1%}  "
            f"{f'{low:.2f}-{high:.2f}':>23s}  {plain_power:17.1%}  {(plain >= truth).mean():12.1%}"
        )


def print_header(argv) -> None:
    command = " ".join(["python benchmarks/bench_claims.py", *(sys.argv[1:] if argv is None else argv)])
    print(
        f"# {datetime.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores; "
        f"numpy {np.__version__}; {command}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10000, help="replicates per cell (default 10000)")
    parser.add_argument("--studies", type=int, default=200, help="null-world studies (default 200)")
    parser.add_argument(
        "--skew", action="store_true", help="only experiments 4 and 5 (skewed differences; the conservative MDE)"
    )
    args = parser.parse_args(argv)
    print_header(argv)
    if args.skew:
        skew_experiment(args.reps)
        bound_experiment(args.reps)
        return 0

    former, current = null_world(args.studies, seed=12)
    print(f"1. null world, {args.studies} studies of 2 prompts x 2 seeds (tiny):")
    print(f"   former rule (bootstrap over pairs): {former} claims hold ({former / args.studies:.1%})")
    print(f"   claim test (prompt means, t + sign-flip): {current} claims hold ({current / args.studies:.1%})")
    big = 2000
    former_big, _ = null_world(big, seed=13)
    print(f"   former rule over {big} studies: {former_big / big:.1%}")
    one_former, one_current = null_world(big, seed=14, prompts=1, seeds=1)
    print(f"   one prompt, one seed, {big} studies: former {one_former / big:.1%}, claim test {one_current / big:.1%}")

    bound = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / args.reps)
    print(
        f"\n2. false-claim rate of above_reference() at a true difference of 0 "
        f"(nominal {ALPHA:.1%}; {args.reps} replicates, binomial bound {bound:.2%}):"
    )
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

    skew_experiment(args.reps)
    bound_experiment(args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
