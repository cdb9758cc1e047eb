"""Claims about a variant's metric relative to its reference, decided by a test.

A claim states a direction and a margin; it holds only when the one-sided test of the
prompt-level differences (paired t-test and exact sign-flip test, both; see ``stats``)
rejects its opposite at the interval's level (2.5% for a 95% interval), after Holm's
correction over the claims of the same test. With too few prompts for the test to reject
at all, a claim fails and says how many prompts it needs.

Claims are soft: every claim of a test is checked and recorded, and the test fails at its
end with one ``ExpectationFailed`` listing every claim that failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from .stats import PairedDelta, holm, mde_factor, smallest_pvalue, units_needed


class ExpectationFailed(AssertionError):
    """A claim about a metric delta that the numbers do not support."""


@dataclass(frozen=True)
class Claim:
    name: str
    wording: str  # filled with the margin
    # (side, sign of the margin): the mean difference must be beyond sign * margin on side.
    tests: tuple


CLAIMS = {
    "above_reference": Claim(
        "above_reference", "above the reference by more than {m}", (("above", +1),)
    ),
    "below_reference": Claim(
        "below_reference", "below the reference by more than {m}", (("below", -1),)
    ),
    "not_below_reference": Claim(
        "not_below_reference", "not below the reference by more than {m}", (("above", -1),)
    ),
    "not_above_reference": Claim(
        "not_above_reference", "not above the reference by more than {m}", (("below", +1),)
    ),
    "within_reference": Claim(
        "within_reference", "within {m} of the reference", (("above", -1), ("below", +1))
    ),
}


def _fmt(x) -> str:
    return "—" if x is None else f"{x:.6g}"


def _p(x: float) -> str:
    return f"{x:.3g}"


def claim_pvalue(claim: Claim, delta: PairedDelta, margin: float, *, same: bool = False) -> float:
    """The claim's one-sided p-value (the larger of its sides' for an equivalence claim).

    ``same``: the variant is its own reference, so the difference is exactly 0 with no
    sampling error; the claim then holds (p = 0) or not (p = 1) by its wording alone.
    """
    if same:
        # A difference of exactly 0 is "not below", "not above" and "within" any margin >= 0,
        # and never "above" or "below" by more than one.
        return 0.0 if claim.name in ("not_below_reference", "not_above_reference", "within_reference") else 1.0
    return max(delta.beyond(sign * margin, side) for side, sign in claim.tests)


class ClaimSet:
    """The claims one test makes: checked as they come, decided together at the end."""

    def __init__(self) -> None:
        self.checked: list[tuple[Expectation, Claim, float, dict]] = []

    def add(self, expectation: "Expectation", claim: Claim, margin: float, outcome: dict) -> None:
        self.checked.append((expectation, claim, margin, outcome))

    def decide(self) -> list[str]:
        """Holm over this test's claims: set every outcome's verdict; the failures' messages."""
        if not self.checked:
            return []
        family = len(self.checked)
        adjusted = holm([outcome["p_value"] for *_, outcome in self.checked])
        failures = []
        for (expectation, claim, margin, outcome), p_adjusted in zip(self.checked, adjusted):
            delta = expectation.delta
            level = delta.alpha / family
            needs = units_needed(level) if not outcome.get("exact") else 0
            factor = mde_factor(delta.n, level) if delta.n >= 2 else None
            mde = None if factor is None or delta.spread is None else factor * delta.spread
            outcome.update(
                p_adjusted=p_adjusted,
                family=family,
                alpha=delta.alpha,
                needs=needs if delta.n < needs else None,
                unit=delta.unit,
                mde=mde,
                underpowered=mde is None or margin < mde,
                passed=bool(p_adjusted <= delta.alpha),
            )
            if not outcome["passed"]:
                failures.append(expectation.explain(claim, margin, outcome))
        return failures

    def raise_failures(self) -> None:
        failures = self.decide()
        if failures:
            text = "\n\n".join(failures)
            if len(self.checked) > 1:
                text += f"\n\n{len(failures)} of the test's {len(self.checked)} claims failed"
            raise ExpectationFailed(text)


class Expectation:
    """``ablation.expect(result, metric)``: state a direction and a margin.

    With a ``claims`` set (inside a test) a claim is recorded and decided at the test's end;
    without one (plain code) it is decided at once, as a family of one, and raises
    ``ExpectationFailed`` if it does not hold.
    """

    def __init__(self, comparison, metric: str, on_checked=None, claims: ClaimSet | None = None):
        if metric not in comparison.metrics:
            raise KeyError(
                f"metric {metric!r} was not measured for {comparison.variant!r}; measured: "
                f"{', '.join(comparison.metrics)} (list it in the ablation marker's metrics)"
            )
        self.comparison = comparison
        self.metric = metric
        self._on_checked = on_checked
        self._claims = claims

    @property
    def _same(self) -> bool:
        return self.comparison.variant == self.comparison.reference

    @property
    def delta(self) -> PairedDelta:
        return self.comparison.metrics[self.metric].delta

    def above_reference(self, margin: float = 0.0) -> "Expectation":
        return self._check("above_reference", margin)

    def below_reference(self, margin: float = 0.0) -> "Expectation":
        return self._check("below_reference", margin)

    def not_below_reference(self, margin: float = 0.0) -> "Expectation":
        return self._check("not_below_reference", margin)

    def not_above_reference(self, margin: float = 0.0) -> "Expectation":
        return self._check("not_above_reference", margin)

    def within_reference(self, margin: float) -> "Expectation":
        return self._check("within_reference", margin)

    def _check(self, claim_name: str, margin: float) -> "Expectation":
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or margin != margin or margin < 0:
            raise ValueError(f"margin must be a number >= 0, got {margin!r}")
        margin = float(margin)
        claim = CLAIMS[claim_name]
        outcome = {
            "metric": self.metric,
            "claim": claim_name,
            "margin": margin,
            "passed": False,
            "p_value": claim_pvalue(claim, self.delta, margin, same=self._same),
            "n": self.delta.n,
        }
        if self._same:
            outcome["exact"] = True
        if self._on_checked is not None:
            self._on_checked(outcome)
        claims = self._claims if self._claims is not None else ClaimSet()
        claims.add(self, claim, margin, outcome)
        if self._claims is None:
            claims.raise_failures()
        return self

    def explain(self, claim: Claim, margin: float, outcome: dict) -> str:
        c = self.comparison
        delta = self.delta
        width = max(len(c.variant), len(c.reference))
        pct = round(delta.confidence * 100)
        seeds = delta.samples // delta.n if delta.n else 0
        family = outcome["family"]
        level = delta.alpha / family
        share = (f"the {_p(level)} each of {family} claims gets (Holm)" if family > 1
                 else f"the level {_p(level)}")
        lines = [
            f"{c.study}: expected {self.metric} of {c.variant} to be "
            + claim.wording.format(m=_fmt(margin)),
            f"  variant   {c.variant:<{width}}  {_fmt(delta.variant)}",
            f"  reference {c.reference:<{width}}  {_fmt(delta.reference)}",
            f"  delta {_fmt(delta.delta)}, {pct}% CI [{_fmt(delta.low)}, {_fmt(delta.high)}] "
            + (f"over {delta.n} seed(s) x {seeds} prompt(s), the seed the unit"
               if delta.unit == "seed" else f"over {delta.n} prompt(s) x {seeds} seed(s)")
            + f", margin {_fmt(margin)}",
        ]
        if outcome["needs"] is not None:
            lines.append(
                f"  cannot hold with {delta.n} {delta.unit}(s): the smallest p-value they can give is "
                f"{_p(smallest_pvalue(delta.n))}, above {share}; the claim needs at least "
                f"{outcome['needs']} {delta.unit}s"
            )
            return "\n".join(lines)
        p_text = f"p = {_p(outcome['p_value'])} (one-sided, t and sign-flip tests)"
        if family > 1:
            p_text += f", Holm-adjusted over {family} claims {_p(outcome['p_adjusted'])}"
        lines.append(f"  {p_text}, above the level {_p(delta.alpha)}")
        if outcome["underpowered"]:
            lines.append(
                f"  underpowered: the smallest effect this study detects with 80% power is "
                f"{_fmt(outcome['mde'])}, and the margin is {_fmt(margin)}"
            )
        return "\n".join(lines)


class IgnoredExpectation:
    """What ``expect`` gives while a reference case is replayed: its claims are not this test's."""

    def __getattr__(self, name):
        if name in CLAIMS:
            return lambda *args, **kwargs: self
        raise AttributeError(name)
