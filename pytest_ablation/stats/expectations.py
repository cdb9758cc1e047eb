"""Claims about a variant's metric relative to its reference, each with one of three verdicts.

A claim states a direction and a margin. Its verdict is

- **supported**: the one-sided test of the claim rejects its opposite (the mean difference is
  beyond the bound on the claimed side);
- **refuted**: the opposite one-sided test rejects (the difference is beyond the bound on the
  other side): the evidence points the other way;
- **inconclusive**: neither; the output says how many units the observed effect would need.

Both tests are the paired t-test and the exact sign-flip test together (``stats``), or the
exact sign test for a median claim, at the interval's level (2.5% for a 95% interval) shared
by the claim's family. A study's declared claims (the marker's ``claims``; ``claims.py``)
are one family: Bonferroni over all of them, whichever cases run. A claim made with
``ablation.expect`` in a test body and not declared is exploratory: Holm over that test's
exploratory claims. A claim that is not supported fails its test, and the message says which
verdict it got.

Claims are soft: every claim of a test is checked and recorded, and the test fails at its
end with one ``ExpectationFailed`` listing every claim that was not supported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol
from collections.abc import Callable, Mapping

from .claims import DeclaredClaim, smallest_adjusted_p, units_to_decide, verdict_of  # noqa: F401
from .paired import PairedDelta, holm, mde_bound, mde_factor, prompts_needed, skew_warning


# Beyond this many units the observed effect is too small to plan a study around: its
# inconclusive verdict says so instead of searching further.
WOULD_NEED_LIMIT = 1000


class ExpectationFailed(AssertionError):
    """A claim about a metric delta that the numbers do not support."""


class ComparedMetric(Protocol):
    @property
    def delta(self) -> PairedDelta: ...


class Compared(Protocol):
    """What a claim reads of a variant's comparison with its reference (the ``Comparison``
    that ``ablation.run`` returns), so that statistics need not know how runs are made."""

    study: str
    variant: str
    reference: str

    @property
    def metrics(self) -> Mapping[str, ComparedMetric]: ...


@dataclass(frozen=True)
class Claim:
    name: str
    wording: str  # filled with the margin
    # (side, sign of the margin): the mean difference must be beyond sign * margin on side.
    tests: tuple[tuple[str, int], ...]


CLAIMS = {
    "above_reference": Claim("above_reference", "above the reference by more than {m}", (("above", +1),)),
    "below_reference": Claim("below_reference", "below the reference by more than {m}", (("below", -1),)),
    "not_below_reference": Claim("not_below_reference", "not below the reference by more than {m}", (("above", -1),)),
    "not_above_reference": Claim("not_above_reference", "not above the reference by more than {m}", (("below", +1),)),
    "within_reference": Claim("within_reference", "within {m} of the reference", (("above", -1), ("below", +1))),
}
_OPPOSITE = {"above": "below", "below": "above"}
# A difference of exactly 0 (a variant compared with itself) is "not below", "not above" and
# "within" any margin, and never "above" or "below" by more than one.
_HOLDS_AT_ZERO = ("not_below_reference", "not_above_reference", "within_reference")


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.6g}"


def _p(x: float) -> str:
    return f"{x:.3g}"


def claim_pvalues(
    claim: Claim, delta: PairedDelta, margin: float, statistic: str = "mean", *, same: bool = False
) -> tuple[float, float]:
    """(supporting, refuting) one-sided p-values of the claim.

    Supporting: the claim's own test (the larger of its sides' for an equivalence claim).
    Refuting: the opposite test at the same bound (for an equivalence claim, either bound
    crossed, the smaller p doubled). ``same``: the variant is its own reference, so the
    difference is exactly 0 and the wording alone decides (p = 0 or 1).
    """
    if same:
        holds = claim.name in _HOLDS_AT_ZERO
        return (0.0, 1.0) if holds else (1.0, 0.0)
    supporting = max(delta.beyond(sign * margin, side, statistic=statistic) for side, sign in claim.tests)
    refuting = [delta.beyond(sign * margin, _OPPOSITE[side], statistic=statistic) for side, sign in claim.tests]
    return supporting, min(1.0, len(refuting) * min(refuting))


class ClaimSet:
    """The claims one test makes: checked as they come, decided together at the end.

    ``family_size``: the number of claims the study declares (its confirmatory family);
    declared claims are tested at ``alpha / family_size`` whatever else runs.
    """

    def __init__(self, family_size: int = 0) -> None:
        self.family_size = family_size
        self.checked: list[tuple[Expectation, Claim, float, dict[str, Any]]] = []

    def add(self, expectation: Expectation, claim: Claim, margin: float, outcome: dict[str, Any]) -> None:
        self.checked.append((expectation, claim, margin, outcome))

    def has(self, metric: str, claim: str, margin: float, statistic: str) -> dict[str, Any] | None:
        for _, _, _, outcome in self.checked:
            if (outcome["metric"], outcome["claim"], outcome["statistic"]) == (metric, claim, statistic) and abs(
                outcome["margin"] - margin
            ) <= 1e-12:
                return outcome
        return None

    def decide(self) -> list[str]:
        """Give every claim its verdict; the messages of those not supported."""
        declared = [entry for entry in self.checked if entry[3]["family"] == "declared"]
        exploratory = [entry for entry in self.checked if entry[3]["family"] != "declared"]
        failures = []
        if declared:
            size = max(self.family_size, len(declared))
            for entry in declared:
                outcome = entry[3]
                adjusted = (min(1.0, size * outcome["p_value"]), min(1.0, size * outcome["p_refute"]))
                failures += self._verdict(entry, size, *adjusted)
        if exploratory:
            size = len(exploratory)
            supporting = holm([entry[3]["p_value"] for entry in exploratory])
            refuting = holm([entry[3]["p_refute"] for entry in exploratory])
            for entry, p_support, p_refute in zip(exploratory, supporting, refuting):
                failures += self._verdict(entry, size, p_support, p_refute)
        return failures

    @staticmethod
    def _verdict(
        entry: tuple[Expectation, Claim, float, dict[str, Any]], size: int, p_adjusted: float, p_refute_adjusted: float
    ) -> list[str]:
        expectation, claim, margin, outcome = entry
        delta = expectation.delta
        level = delta.alpha / size
        exact = outcome.get("exact", False)
        needed = 0 if exact else units_to_decide(size, delta.alpha)
        factor = mde_factor(delta.n, level) if delta.n >= 2 else None
        mde = None if factor is None or delta.spread is None else factor * delta.spread
        sequential = outcome.get("sequential")
        if sequential is not None:
            # Decided look by look at the family's level (``sequential``): the verdict of
            # the look where the claim stopped.
            verdict = sequential["verdict"]
        elif p_adjusted <= delta.alpha:
            verdict = "supported"
        elif p_refute_adjusted <= delta.alpha:
            verdict = "refuted"
        else:
            verdict = "inconclusive"
        would_need = None
        if verdict == "inconclusive" and not exact and delta.spread and _on_claimed_side(claim, margin, delta.delta):
            # The units at which the observed effect, beyond the claim's bound on its side,
            # would be supported with 80% power at this spread.
            distance = abs(delta.delta - _bound(claim, margin, delta.delta))
            would_need = (
                prompts_needed(distance, delta.spread, delta.alpha, family=size, limit=WOULD_NEED_LIMIT)
                if distance > 0
                else None
            )
        outcome.update(
            verdict=verdict,
            passed=verdict == "supported",
            p_adjusted=p_adjusted,
            p_refute_adjusted=p_refute_adjusted,
            family_size=size,
            alpha=delta.alpha,
            level=level,
            needs=needed if delta.n < needed else None,
            would_need=would_need,
            unit=delta.unit,
            mde=mde,
            mde_bound=_mde_bound(delta, level),
            underpowered=mde is None or margin < mde,
        )
        return [] if verdict == "supported" else [expectation.explain(claim, margin, outcome)]

    def raise_failures(self) -> None:
        failures = self.decide()
        if failures:
            text = "\n\n".join(failures)
            if len(self.checked) > 1:
                text += f"\n\n{len(failures)} of the test's {len(self.checked)} claims not supported"
            raise ExpectationFailed(text)


def _on_claimed_side(claim: Claim, margin: float, delta: float) -> bool:
    """Whether the observed mean difference lies where the claim says it does."""
    return all(delta > sign * margin if side == "above" else delta < sign * margin for side, sign in claim.tests)


def _bound(claim: Claim, margin: float, delta: float) -> float:
    """The claim's bound nearest to ``delta`` (an equivalence claim has two)."""
    bounds = [sign * margin for _, sign in claim.tests]
    return min(bounds, key=lambda b: abs(delta - b))


def _mde_bound(delta: PairedDelta, level: float) -> float | None:
    return None if delta.spread is None else mde_bound(delta.n, delta.spread, level)


class Expectation:
    """``ablation.expect(result, metric)``: state a direction and a margin.

    With a ``claims`` set (inside a test) a claim is recorded and decided at the test's end;
    without one (plain code) it is decided at once, as a family of one, and raises
    ``ExpectationFailed`` if it is not supported.
    """

    def __init__(
        self,
        comparison: Compared,
        metric: str,
        on_checked: Callable[[dict[str, Any]], None] | None = None,
        claims: ClaimSet | None = None,
        *,
        declared: tuple[DeclaredClaim, ...] = (),
    ) -> None:
        if metric not in comparison.metrics:
            raise KeyError(
                f"metric {metric!r} was not measured for {comparison.variant!r}; measured: "
                f"{', '.join(comparison.metrics)} (list it in the ablation marker's metrics)"
            )
        self.comparison = comparison
        self.metric = metric
        self._on_checked = on_checked
        self._claims = claims
        self._declared = declared

    @property
    def _same(self) -> bool:
        return self.comparison.variant == self.comparison.reference

    @property
    def delta(self) -> PairedDelta:
        return self.comparison.metrics[self.metric].delta

    def above_reference(self, margin: float = 0.0, *, statistic: str = "mean") -> Expectation:
        return self._check("above_reference", margin, statistic)

    def below_reference(self, margin: float = 0.0, *, statistic: str = "mean") -> Expectation:
        return self._check("below_reference", margin, statistic)

    def not_below_reference(self, margin: float = 0.0, *, statistic: str = "mean") -> Expectation:
        return self._check("not_below_reference", margin, statistic)

    def not_above_reference(self, margin: float = 0.0, *, statistic: str = "mean") -> Expectation:
        return self._check("not_above_reference", margin, statistic)

    def within_reference(self, margin: float, *, statistic: str = "mean") -> Expectation:
        return self._check("within_reference", margin, statistic)

    def _check(
        self,
        claim_name: str,
        margin: float,
        statistic: str = "mean",
        family: str | None = None,
        sequential: dict[str, Any] | None = None,
    ) -> Expectation:
        if (
            isinstance(margin, bool)
            or not isinstance(margin, (int, float))
            or margin != margin
            or margin < 0
            or math.isinf(margin)
        ):
            # An infinite margin would make every claim trivially held or refuted, and no
            # report could write it (JSON has no infinity).
            raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
        if statistic not in ("mean", "median"):
            raise ValueError(f"statistic must be 'mean' or 'median', got {statistic!r}")
        margin = float(margin)
        if family is None:
            declared = any(c.matches(self.metric, claim_name, margin, statistic) for c in self._declared)
            family = "declared" if declared else "exploratory"
        if self._claims is not None and self._claims.has(self.metric, claim_name, margin, statistic):
            return self  # a declared claim restated in the test body: already checked
        claim = CLAIMS[claim_name]
        p_support, p_refute = claim_pvalues(claim, self.delta, margin, statistic, same=self._same)
        outcome = {
            "metric": self.metric,
            "claim": claim_name,
            "margin": margin,
            "statistic": statistic,
            "family": family,
            "verdict": None,
            "passed": False,
            "p_value": p_support,
            "p_refute": p_refute,
            "n": self.delta.n,
        }
        if self._same:
            outcome["exact"] = True
        if sequential is not None:
            outcome["sequential"] = sequential
        skew = _skew_note(self.delta, claim, statistic)
        if skew:
            outcome["skew"] = skew
        if self._on_checked is not None:
            self._on_checked(outcome)
        claims = self._claims if self._claims is not None else ClaimSet()
        claims.add(self, claim, margin, outcome)
        if self._claims is None:
            claims.raise_failures()
        return self

    def explain(self, claim: Claim, margin: float, outcome: dict[str, Any]) -> str:
        c = self.comparison
        delta = self.delta
        width = max(len(c.variant), len(c.reference))
        pct = round(delta.confidence * 100)
        seeds = delta.samples // delta.n if delta.n else 0
        size = outcome["family_size"]
        level = delta.alpha / size
        median = " (median)" if outcome.get("statistic") == "median" else ""
        if outcome["family"] == "declared":
            share = (
                f"the level {_p(level)} each of the study's {size} declared claims gets (Bonferroni)"
                if size > 1
                else f"the level {_p(level)}"
            )
        else:
            share = (
                f"the {_p(level)} each of the test's {size} exploratory claims gets (Holm)"
                if size > 1
                else f"the level {_p(level)}"
            )
        lines = [
            f"{c.study}: {c.variant} {self.metric} {claim.name}{median}: {outcome['verdict'].upper()}",
            f"  expected {self.metric}{median} of {c.variant} to be " + claim.wording.format(m=_fmt(margin)),
            f"  variant   {c.variant:<{width}}  {_fmt(delta.variant)}",
            f"  reference {c.reference:<{width}}  {_fmt(delta.reference)}",
            f"  delta {_fmt(delta.delta)}, {pct}% CI [{_fmt(delta.low)}, {_fmt(delta.high)}] "
            + (
                f"over {delta.n} seed(s) x {seeds} prompt(s), the seed the unit"
                if delta.unit == "seed"
                else f"over {delta.n} prompt(s) x {seeds} seed(s)"
            )
            + f", margin {_fmt(margin)}",
        ]
        if outcome.get("sequential"):
            seq = outcome["sequential"]
            lines.append(
                f"  decided in rounds: {outcome['verdict']} at look {seq['look']} of "
                f"{len(seq['looks'])} ({seq['n']} {delta.unit}s; looks at "
                f"{', '.join(map(str, seq['looks']))})"
            )
        if outcome["needs"] is not None:
            lines.append(
                f"  cannot be decided with {delta.n} {delta.unit}(s): the smallest adjusted p-value "
                f"they can give is {_p(smallest_adjusted_p(delta.n, size))}, above {share}; "
                f"the claim needs at least {outcome['needs']} {delta.unit}s"
            )
            return "\n".join(lines)
        if outcome["verdict"] == "refuted":
            lines.append(
                f"  refuted: the opposite test rejects, p = {_p(outcome['p_refute'])} (one-sided), "
                f"adjusted {_p(outcome['p_refute_adjusted'])}, at most the level {_p(delta.alpha)}"
            )
        else:
            tests = "sign test" if outcome.get("statistic") == "median" else "t and sign-flip tests"
            lines.append(
                f"  inconclusive: p = {_p(outcome['p_value'])} (one-sided, {tests}), adjusted "
                f"{_p(outcome['p_adjusted'])}, above the level {_p(delta.alpha)}; the opposite "
                f"test's adjusted p = {_p(outcome['p_refute_adjusted'])}"
            )
            if outcome.get("would_need"):
                lines.append(
                    f"  at this effect and spread the claim would need about "
                    f"{outcome['would_need']} {delta.unit}s (80% power)"
                )
            elif not _on_claimed_side(claim, margin, delta.delta):
                lines.append(
                    "  the observed difference lies on the other side of the claim's "
                    "bound: more units would not support it"
                )
        if outcome.get("skew"):
            lines.append(f"  {outcome['skew']}")
        return "\n".join(lines)


def _skew_note(delta: PairedDelta, claim: Claim, statistic: str) -> str | None:
    """A warning when the unit differences are skewed against a mean claim (``stats``)."""
    if statistic != "mean" or len(claim.tests) != 1 or delta.n < 3:
        return None
    return skew_warning(delta.unit_differences, claim.tests[0][0])


class IgnoredExpectation:
    """What ``expect`` gives while a reference case is replayed: its claims are not this test's."""

    def __getattr__(self, name: str) -> Callable[..., IgnoredExpectation]:
        if name in CLAIMS:
            return lambda *args, **kwargs: self
        raise AttributeError(name)
