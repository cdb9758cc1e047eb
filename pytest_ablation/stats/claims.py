"""A study's declared claims: its confirmatory family, fixed before any video is made.

A study names its claims on its marker::

    @pytest.mark.ablation("zs2-tma", reference="mu=0.98", metrics=[...], claims={
        "mu=0.0": ["temporal_consistency below_reference",
                   "clip_score not_above_reference 1.0"],
    })

Each entry is ``"<metric> <claim> [margin] [median]"`` (or a dict with those keys). The family
is every claim of the marker, whichever cases run: each is tested at the Bonferroni level
``alpha / m`` (``m`` claims in the study) and its adjusted p-value is ``min(1, m p)``. Unlike
Holm's step-down, that needs no other claim's p-value, so a claim's verdict and adjusted
p-value are the same whether the whole study runs, one variant (``-k``, a node id), a shard
or another order, and a partial run is never more lenient than the whole. The family-wise
rate of false supported claims is at most ``alpha`` (measured in
``benchmarks/bench_family.py``).

Decidability is known at collection: ``n`` units give a smallest one-sided p-value of
``2**-n`` (the sign-flip test's, and the sign test's), so a family of ``m`` claims at level
``alpha`` needs ``n >= log2(m / alpha)`` units before any claim can be supported or
refuted (7 for two claims at 2.5%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast
from collections.abc import Mapping

from ..suggest import did_you_mean

ALPHA = 0.025  # one-sided, the level of each side of a 95% interval

CLAIM_NAMES = (
    "above_reference",
    "below_reference",
    "not_below_reference",
    "not_above_reference",
    "within_reference",
)
STATISTICS = ("mean", "median")
VERDICTS = ("supported", "refuted", "inconclusive")


class ClaimSpecError(ValueError):
    pass


@dataclass(frozen=True)
class DeclaredClaim:
    """One claim of a study's confirmatory family."""

    variant: str
    metric: str
    claim: str
    margin: float = 0.0
    statistic: str = "mean"

    def matches(self, metric: str, claim: str, margin: float, statistic: str = "mean") -> bool:
        return (self.metric, self.claim, self.statistic) == (metric, claim, statistic) and math.isclose(
            self.margin, margin, rel_tol=0.0, abs_tol=1e-12
        )

    def text(self) -> str:
        margin = f" {self.margin:g}" if self.margin else ""
        median = " (median)" if self.statistic == "median" else ""
        return f"{self.metric} {self.claim}{margin}{median}"


def _one(variant: str, spec: Any, where: str) -> DeclaredClaim:
    if isinstance(spec, str):
        words = spec.split()
        statistic = "mean"
        if words and words[-1] in STATISTICS:
            statistic = words.pop()
        if len(words) not in (2, 3):
            raise ClaimSpecError(
                f"{where}: claims[{variant!r}]: {spec!r} is not '<metric> <claim> [margin] "
                "[median]', e.g. 'temporal_consistency below_reference' or "
                "'clip_score not_above_reference 1.0'"
            )
        metric, claim = words[0], words[1]
        margin: Any = words[2] if len(words) == 3 else 0.0
        try:
            margin = float(margin)
        except ValueError:
            raise ClaimSpecError(
                f"{where}: claims[{variant!r}]: margin of {spec!r} must be a number >= 0, got {words[2]!r}"
            ) from None
    elif isinstance(spec, Mapping):
        keys = ("metric", "claim", "margin", "statistic")
        unknown = sorted(set(spec) - set(keys), key=str)
        if unknown or "metric" not in spec or "claim" not in spec:
            hint = did_you_mean(unknown[0], keys) if unknown else ""
            raise ClaimSpecError(
                f"{where}: claims[{variant!r}]: a claim as a dict needs 'metric' and 'claim' "
                f"(and optionally 'margin', 'statistic'), got {dict(spec)!r}" + (f"; {hint.strip()}" if hint else "")
            )
        metric, claim = spec["metric"], spec["claim"]
        margin, statistic = spec.get("margin", 0.0), spec.get("statistic", "mean")
    else:
        raise ClaimSpecError(
            f"{where}: claims[{variant!r}]: each claim is a string '<metric> <claim> [margin]' or a dict, got {spec!r}"
        )
    if not isinstance(metric, str) or not metric:
        raise ClaimSpecError(f"{where}: claims[{variant!r}]: metric must be a metric name, got {metric!r}")
    if claim not in CLAIM_NAMES:
        raise ClaimSpecError(
            f"{where}: claims[{variant!r}]: unknown claim {claim!r}; "
            f"{did_you_mean(claim, CLAIM_NAMES)}allowed: {', '.join(CLAIM_NAMES)}"
        )
    if (
        isinstance(margin, bool)
        or not isinstance(margin, (int, float))
        or margin != margin
        or margin < 0
        or math.isinf(margin)
    ):
        raise ClaimSpecError(f"{where}: claims[{variant!r}]: margin must be a finite number >= 0, got {margin!r}")
    if claim == "within_reference" and margin <= 0:
        raise ClaimSpecError(f"{where}: claims[{variant!r}]: within_reference needs a margin > 0")
    if statistic not in STATISTICS:
        raise ClaimSpecError(
            f"{where}: claims[{variant!r}]: statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}"
        )
    return DeclaredClaim(variant, metric, claim, float(margin), statistic)


def parse_claims(value: Any, where: str) -> tuple[DeclaredClaim, ...]:
    """The marker's ``claims`` mapping (variant id -> list of claims), checked."""
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not value:
        raise ClaimSpecError(
            f"{where}: claims must map variant ids to lists of claims, e.g. "
            "{'mu=0.0': ['temporal_consistency below_reference']}, got " + repr(value)
        )
    declared: list[DeclaredClaim] = []
    for variant, specs in value.items():
        if not isinstance(variant, str) or not variant:
            raise ClaimSpecError(f"{where}: claims: keys are variant ids (strings), got {variant!r}")
        if isinstance(specs, (str, Mapping)):
            specs = [specs]
        if not specs:
            raise ClaimSpecError(f"{where}: claims[{variant!r}]: an empty list of claims")
        for spec in specs:
            claim = _one(variant, spec, where)
            if any(
                c.variant == variant and c.matches(claim.metric, claim.claim, claim.margin, claim.statistic)
                for c in declared
            ):
                raise ClaimSpecError(f"{where}: claims[{variant!r}]: {claim.text()!r} is declared twice")
            declared.append(claim)
    return tuple(declared)


def verdict_of(outcome: Mapping[str, Any]) -> str:
    """A claim's verdict, also for a report written before verdicts had three words."""
    verdict = outcome.get("verdict")
    if verdict in VERDICTS:
        return cast(str, verdict)
    return "supported" if outcome.get("passed") else "inconclusive"


def units_to_decide(family: int, alpha: float = ALPHA) -> int:
    """The fewest units at which a claim of a family of ``family`` can be decided at all:
    the smallest ``n`` with ``2**-n <= alpha / family``."""
    if family < 1:
        raise ValueError(f"family must be >= 1, got {family}")
    return max(2, math.ceil(math.log2(family / alpha) - 1e-12))


def smallest_adjusted_p(n: int, family: int) -> float:
    return min(1.0, family * 2.0**-n)


@dataclass(frozen=True)
class Decidability:
    """Whether a study's declared claims can be decided with the units a profile gives."""

    study: str
    family: int
    units: int
    unit: str
    needed: int
    claims: tuple[DeclaredClaim, ...]

    @property
    def decidable(self) -> bool:
        return self.units >= self.needed

    def line(self) -> str:
        return (
            f"{self.study}: {self.family} declared claim(s) cannot be decided with "
            f"{self.units} {self.unit}(s) (smallest adjusted p "
            f"{smallest_adjusted_p(self.units, self.family):.3g} > {ALPHA}); "
            f"they need at least {self.needed} {self.unit}s"
        )


def decidability(
    study: str, claims: tuple[DeclaredClaim, ...], units: int, unit: str, alpha: float = ALPHA
) -> Decidability:
    family = len(claims)
    return Decidability(study, family, units, unit, units_to_decide(family, alpha) if family else 0, claims)
