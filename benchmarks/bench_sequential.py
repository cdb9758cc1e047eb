"""Units saved by testing claims after each round of prompts instead of once at a fixed n.

    python benchmarks/bench_sequential.py              # 150000 studies per cell: about a minute
    python benchmarks/bench_sequential.py --reps 200000

Pure numpy, no models. For a fixed-n study of 8, 12 and 18 prompts at a one-sided alpha
of 0.025 (and 12 prompts in a Bonferroni family of two claims, alpha 0.0125), the
sequential design of ``pytest_ablation.stats.sequential`` that replaces it: looks after rounds of
prompts, a budget above the fixed n, the same alpha, and at least the fixed design's power
at its minimum detectable effect (MDE). Simulated studies, normal prompt-level differences
with true mean 0, 0.5, 1 and 2 MDE (standard deviation 1): the fixed design's supported
and refuted rates, the sequential design's expected units, its rates, and the units saved.
A second table: false supported claims when the differences are heavy-tailed (true mean 0),
where the t calibration is no longer exact and the sign-flip requirement matters.

The studies are drawn from seeds other than the ones the designs are calibrated on.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_ablation.stats.sequential import (
    SPENDING_EXPONENT,
    expected_units,
    sequential_design,
    simulate_studies,
)
from pytest_ablation.stats.paired import claim_holds_rows, mde_factor  # noqa: E402

POWER = 0.8
EFFECTS = (0.0, 0.5, 1.0, 2.0)  # in MDEs of the fixed design
# (fixed units, alpha, first look, step, budget, spending exponent). The first look comes
# early, with only a futility stop where the sign-flip floor (2**-n above the look's level)
# rules out claims: that is where most null claims end. 22 units is the largest budget
# whose sign-flip counts are exact and fast (stats.EXACT_SIGN_FLIP_MAX); beyond it the
# simulations call stats.sign_flip_pvalue study by study and take minutes. At the smaller
# Bonferroni alpha the floor blocks more early looks; spending earlier (exponent 1 rather
# than the default 1.5) gets them back.
SCENARIOS = (
    (8, 0.025, 3, 3, 10, SPENDING_EXPONENT),
    (12, 0.025, 4, 3, 16, SPENDING_EXPONENT),
    (18, 0.025, 8, 3, 22, SPENDING_EXPONENT),
    (12, 0.025 / 2, 4, 3, 16, 1.0),
)
SIM_SEED = 20_261_207  # the designs calibrate on other seeds (see pytest_ablation.stats.sequential)


def heavy_tailed(shape: str, rng: np.random.Generator, size) -> np.ndarray:
    if shape == "t3":
        return rng.standard_t(3, size) / math.sqrt(3.0)  # variance 1
    if shape == "contaminated":  # 10% of prompts ten times as variable
        return np.where(rng.random(size) < 0.1, 10.0, 1.0) * rng.standard_normal(size)
    raise ValueError(shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=150_000, help="simulated studies per cell")
    args = parser.parse_args()
    reps = args.reps

    print("Sequential claim designs against fixed-n claim tests (normal prompt differences)")
    print(
        f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; "
        f"machine: {platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}"
    )
    print(f"command: python {' '.join(sys.argv)}")
    print(f"studies per cell: {reps}; simulation seed {SIM_SEED}; power asked {POWER:.0%}")
    started = time.perf_counter()

    all_savings = []
    checks = []
    robustness = []
    for index, (fixed_n, alpha, first, step, budget, exponent) in enumerate(SCENARIOS):
        mde_factor(fixed_n, alpha, POWER)  # the fixed design's MDE (cached): not timed below
        calibrating = time.perf_counter()
        design = sequential_design(first, step, budget, alpha, POWER, fixed_units=fixed_n, spending_exponent=exponent)
        calibrated = time.perf_counter() - calibrating
        mde = design.effect
        family = "" if alpha == 0.025 else " (Bonferroni, 2 claims: alpha 0.025/2)"
        print()
        print(f"fixed n = {fixed_n}, alpha = {alpha:g}{family}; MDE {mde:.3f} SD")
        print(
            f"  looks {design.looks}, alpha spent as (n / {budget}) ** {exponent:g}; "
            f"design calibrated in {calibrated:.1f} s"
        )
        print(
            "  efficacy t >= "
            + ", ".join("-" if math.isinf(c) else f"{c:.2f}" for c in design.efficacy)
            + "; futility t < "
            + ", ".join("-" if math.isinf(f) else f"{f:.2f}" for f in design.futility)
            + "; nominal levels "
            + ", ".join("-" if level == 0 else f"{level:.4f}" for level in design.nominal_levels)
        )
        print(
            f"  {'true effect':>14} | {'fixed: units':>12} {'supported':>9} {'refuted':>8} | "
            f"{'sequential: E[units]':>20} {'supported':>9} {'refuted':>8} | {'saving':>6}"
        )
        savings = []
        for which, multiple in enumerate(EFFECTS):
            rng = np.random.default_rng([SIM_SEED, index, which])
            effect = multiple * mde
            fixed_rows = rng.standard_normal((reps, fixed_n)) + effect
            fixed_supported = float(claim_holds_rows(fixed_rows, alpha).mean())
            fixed_refuted = float(claim_holds_rows(-fixed_rows, alpha).mean())
            units, supported, refuted = expected_units(design, effect, reps, rng)
            saving = 1.0 - units / fixed_n
            savings.append(saving)
            label = f"{multiple:.1f} MDE={effect:.2f}"
            print(
                f"  {label:>14} | {fixed_n:>12d} {fixed_supported:>9.2%} "
                f"{fixed_refuted:>8.2%} | {units:>20.2f} {supported:>9.2%} {refuted:>8.2%} | "
                f"{saving:>6.1%}"
            )
            if multiple == 0.0:
                se = math.sqrt(alpha * (1 - alpha) / reps)
                checks.append(
                    f"n={fixed_n} alpha={alpha:g}: false supported {supported:.2%} "
                    f"(fixed {fixed_supported:.2%}; alpha {alpha:.2%}, "
                    f"+2 SE {alpha + 2 * se:.2%})"
                )
            if multiple == 1.0:
                checks.append(
                    f"n={fixed_n} alpha={alpha:g}: power at 1 MDE {supported:.2%} "
                    f"(fixed {fixed_supported:.2%}; asked {POWER:.0%})"
                )
        average = float(np.mean(savings))
        all_savings.append(average)
        print(f"  average saving over the four effects: {average:.1%}")

        for shape in ("t3", "contaminated"):
            rng = np.random.default_rng([SIM_SEED, index, 100, len(shape)])
            fixed_rate = float(claim_holds_rows(heavy_tailed(shape, rng, (reps, fixed_n)), alpha).mean())
            _, verdict = simulate_studies(design, heavy_tailed(shape, rng, (reps, budget)))
            robustness.append(
                f"  n={fixed_n:>2} alpha={alpha:<7g} {shape:>13}: fixed "
                f"{fixed_rate:.2%}, sequential {(verdict == 1).mean():.2%}"
            )

    print()
    print("Error and power (the sequential design against the fixed one, same effects):")
    for line in checks:
        print(f"  {line}")
    print()
    print("False supported claims at true mean 0, heavy-tailed differences:")
    for line in robustness:
        print(line)
    print()
    print(
        f"Average saving over all scenarios and effects: {np.mean(all_savings):.1%} "
        f"(target: 30%); per scenario " + ", ".join(f"{s:.1%}" for s in all_savings)
    )
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
