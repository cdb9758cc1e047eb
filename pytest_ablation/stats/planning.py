"""How many prompts and seeds a claim needs: ``pytest-ablation plan``.

A prompt-level difference averages the seeds of its prompt, so its variance has two parts:
what differs between prompts (``between``) and what differs between seeds of one prompt
(``within``), the latter divided by the number of seeds. Both are estimated from a report's
per-sample scores; the plan then asks, for 1, 2, ... seeds per prompt, for the fewest prompts
at which the claim test detects the effect with the requested power.

The spread is planned from its upper confidence bound (``stats.MDE_BOUND_CONFIDENCE``, as
for the ``mde_bound`` a report prints), not from the estimate: planned from the estimate a
study reaches its power only about half the time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .paired import DEFAULT_CONFIDENCE, MDE_BOUND_CONFIDENCE, prompts_needed, spread_upper_factor


def variance_parts(prompts: list[str], diffs: list[float]) -> tuple[float, float, int, int] | None:
    """(between, within, prompts, seeds per prompt) of sample-level differences, or None
    with fewer than two prompts."""
    groups: dict[str, list[float]] = {}
    for prompt, d in zip(prompts, diffs):
        groups.setdefault(prompt, []).append(float(d))
    if len(groups) < 2:
        return None
    seeds = min(len(g) for g in groups.values())
    means = np.array([np.mean(g) for g in groups.values()])
    within = float(np.mean([np.var(g, ddof=1) for g in groups.values()])) if seeds > 1 else 0.0
    between = max(float(np.var(means, ddof=1)) - within / seeds, 0.0)
    return between, within, len(groups), seeds


def plan_rows(
    report: dict[str, Any], metric: str, effect: float, *, power: float = 0.8, claims: int = 1, max_seeds: int = 4
) -> list[dict[str, Any]]:
    """Per non-reference variant scored by ``metric``: its variance parts and the prompts
    needed for each number of seeds per prompt."""
    rows = []
    for study in report["studies"]:
        for variant in study["variants"]:
            m = (variant.get("metrics") or {}).get(metric)
            if m is None or variant.get("is_reference") or variant["variant"] == variant.get("reference"):
                continue
            samples = variant.get("samples") or []
            values, reference = m.get("samples") or [], m.get("reference_samples") or []
            if not samples or len(values) != len(samples) or len(reference) != len(samples):
                continue
            parts = variance_parts([s["prompt"] for s in samples], [v - r for v, r in zip(values, reference)])
            if parts is None:
                continue
            between, within, n_prompts, n_seeds = parts
            alpha = (1 - m.get("confidence", DEFAULT_CONFIDENCE)) / 2
            upper = spread_upper_factor(n_prompts, MDE_BOUND_CONFIDENCE)
            needed = {
                k: prompts_needed(effect, upper * math.sqrt(between + within / k), alpha, power, family=claims)
                for k in range(1, max_seeds + 1)
            }
            rows.append(
                {
                    "study": study["study"],
                    "variant": variant["variant"],
                    "prompts": n_prompts,
                    "seeds": n_seeds,
                    "between": between,
                    "within": within,
                    "needed": needed,
                }
            )
    if not rows:
        raise ValueError(
            f"no variant in the report is scored by {metric!r} on two or more prompts; the plan "
            "needs a report with per-sample scores of that metric"
        )
    return rows


def render_plan(rows: list[dict[str, Any]], metric: str, effect: float, *, power: float = 0.8, claims: int = 1) -> str:
    from tabulate import tabulate

    seeds = sorted(rows[0]["needed"])
    headers = ["study", "variant", "now", "sd between prompts", "sd within (seeds)"] + [
        f"prompts at {k} seed(s)" for k in seeds
    ]
    table = [
        [
            r["study"],
            r["variant"],
            f"{r['prompts']} x {r['seeds']}",
            f"{math.sqrt(r['between']):.3g}",
            f"{math.sqrt(r['within']):.3g}",
        ]
        + ["—" if r["needed"][k] is None else str(r["needed"][k]) for k in seeds]
        for r in rows
    ]
    worst = {k: [r["needed"][k] for r in rows] for k in seeds}
    lines = [
        f"To detect a mean difference of {effect:g} in {metric} with {power:.0%} power "
        f"(one-sided t and sign-flip tests at 2.5%"
        + (f", Bonferroni over {claims} declared claims" if claims > 1 else "")
        + f"; spread at its {MDE_BOUND_CONFIDENCE:.0%} upper confidence bound):",
        tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True),
        "",
    ]
    for k in seeds:
        if all(x is not None for x in worst[k]):
            lines.append(
                f"every variant above: {max(worst[k])} prompts x {k} seed(s) ({max(worst[k]) * k} samples per variant)"
            )
    return "\n".join(lines) + "\n"
