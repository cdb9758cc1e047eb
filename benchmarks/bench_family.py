"""How often a study of null variants gets a false supported claim, through the plugin's path.

    python benchmarks/bench_family.py              # the figures quoted in the README
    python benchmarks/bench_family.py --reps 20000

Pure numpy and the plugin's own decision path (``paired_delta`` -> ``Expectation`` ->
``ClaimSet.decide``), no models. A study of 4 variants shares one reference; every variant
is drawn exactly like the reference (a null world: each claim ``above_reference()`` that is
supported is false), at 8 prompts x 2 seeds, the prompt the unit. Scores are a prompt effect
plus per-sample noise, so the four variants' differences are correlated through the shared
reference. Two ways of deciding:

- declared family: the study declares one claim per variant, Bonferroni over the 4,
  whichever case runs (what a study with ``claims=`` on its marker gets);
- per test: each case decides its own claim alone (a family of one: what a claim made with
  ``ablation.expect`` in the test body gets).

Printed: the share of studies with at least one false supported claim, and with two or more.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_ablation.run.ablation import Comparison, MetricComparison  # noqa: E402
from pytest_ablation.stats.claims import DeclaredClaim  # noqa: E402
from pytest_ablation.stats.expectations import ClaimSet, Expectation  # noqa: E402
from pytest_ablation.stats.paired import paired_delta  # noqa: E402

METRIC = "score"


def null_study(
    rng, variants: int, prompts: int, seeds: int, prompt_sd: float = 1.0, noise_sd: float = 1.0
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(reference scores, variant scores [variants, samples], sample prompts)."""
    effect = np.repeat(rng.normal(0.0, prompt_sd, prompts), seeds)
    reference = effect + rng.normal(0.0, noise_sd, prompts * seeds)
    arms = effect + rng.normal(0.0, noise_sd, (variants, prompts * seeds))
    labels = [f"prompt {p}" for p in range(prompts) for _ in range(seeds)]
    return reference, arms, labels


def comparison(variant: str, values, reference, labels) -> Comparison:
    delta = paired_delta(values, reference, units=labels)
    metric = MetricComparison(METRIC, "higher", delta, tuple(values), tuple(reference), (None,) * len(values))
    return Comparison("null-study", variant, "reference", {}, {}, {}, {METRIC: metric})


def supported_claims(reference, arms, labels, *, declared: bool) -> int:
    """How many of the study's claims come out supported."""
    names = [f"v{k}" for k in range(len(arms))]
    family = tuple(DeclaredClaim(name, METRIC, "above_reference") for name in names)
    supported = 0
    for name, values in zip(names, arms):
        claims = ClaimSet(family_size=len(family) if declared else 0)
        mine = tuple(c for c in family if c.variant == name) if declared else ()
        expectation = Expectation(comparison(name, values, reference, labels), METRIC, claims=claims, declared=mine)
        expectation._check("above_reference", 0.0, family="declared" if declared else None)
        claims.decide()
        supported += sum(outcome["verdict"] == "supported" for *_, outcome in claims.checked)
    return supported


def false_claim_rates(reps: int, seed: int, *, variants=4, prompts=8, seeds=2, declared: bool) -> tuple[float, float]:
    """(share of studies with >= 1 supported claim, share with >= 2)."""
    rng = np.random.default_rng(seed)
    counts = np.array(
        [supported_claims(*null_study(rng, variants, prompts, seeds), declared=declared) for _ in range(reps)]
    )
    return float((counts >= 1).mean()), float((counts >= 2).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    args = parser.parse_args()
    print(
        f"# {datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores; "
        f"python benchmarks/bench_family.py --reps {args.reps}"
    )
    print(
        "4 null variants sharing one reference, 8 prompts x 2 seeds, above_reference() each; "
        f"{args.reps} simulated studies"
    )
    print(f"{'decision':<18} {'>= 1 false supported':>22} {'>= 2':>8}   (intended: <= 2.5%)")
    for label, declared in (("declared family", True), ("per test", False)):
        one, two = false_claim_rates(args.reps, 20261207, declared=declared)
        print(f"{label:<18} {one:>21.2%} {two:>8.2%}")


if __name__ == "__main__":
    main()
