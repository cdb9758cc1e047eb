"""Claims about a variant's metric relative to its reference, checked on the interval.

A claim holds only when the whole bootstrap interval of the paired delta lies on the
claimed side of the margin, so that a lucky point estimate on four samples cannot pass it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .stats import PairedDelta


class ExpectationFailed(AssertionError):
    """A claim about a metric delta that the numbers do not support."""


@dataclass(frozen=True)
class Claim:
    name: str
    wording: str  # filled with the margin
    holds: Callable[[PairedDelta, float], bool]


CLAIMS = {
    "above_reference": Claim(
        "above_reference", "above the reference by more than {m}", lambda d, m: d.low > m
    ),
    "below_reference": Claim(
        "below_reference", "below the reference by more than {m}", lambda d, m: d.high < -m
    ),
    "not_below_reference": Claim(
        "not_below_reference", "not below the reference by more than {m}", lambda d, m: d.low >= -m
    ),
    "not_above_reference": Claim(
        "not_above_reference", "not above the reference by more than {m}", lambda d, m: d.high <= m
    ),
    "within_reference": Claim(
        "within_reference", "within {m} of the reference", lambda d, m: -m <= d.low and d.high <= m
    ),
}


def _fmt(x: float) -> str:
    return f"{x:.6g}"


class Expectation:
    """``ablation.expect(result, metric)``: state a direction and a margin."""

    def __init__(self, comparison, metric: str, on_checked=None):
        if metric not in comparison.metrics:
            raise KeyError(
                f"metric {metric!r} was not measured for {comparison.variant!r}; measured: "
                f"{', '.join(comparison.metrics)} (list it in the ablation marker's metrics)"
            )
        self.comparison = comparison
        self.metric = metric
        self._on_checked = on_checked

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
        if not isinstance(margin, (int, float)) or margin != margin or margin < 0:
            raise ValueError(f"margin must be a number >= 0, got {margin!r}")
        claim = CLAIMS[claim_name]
        delta = self.comparison.metrics[self.metric].delta
        passed = bool(claim.holds(delta, float(margin)))
        if self._on_checked is not None:
            self._on_checked(
                {"metric": self.metric, "claim": claim_name, "margin": float(margin), "passed": passed}
            )
        if not passed:
            raise ExpectationFailed(self.explain(claim, float(margin), delta))
        return self

    def explain(self, claim: Claim, margin: float, delta: PairedDelta) -> str:
        c = self.comparison
        width = max(len(c.variant), len(c.reference))
        pct = round(delta.confidence * 100)
        return "\n".join(
            [
                f"{c.study}: expected {self.metric} of {c.variant} to be "
                + claim.wording.format(m=_fmt(margin)),
                f"  variant   {c.variant:<{width}}  {_fmt(delta.variant)}",
                f"  reference {c.reference:<{width}}  {_fmt(delta.reference)}",
                f"  delta {_fmt(delta.delta)}, {pct}% CI [{_fmt(delta.low)}, {_fmt(delta.high)}] "
                f"over {delta.n} paired (prompt, seed) samples, margin {_fmt(margin)}",
            ]
        )


class IgnoredExpectation:
    """What ``expect`` gives while a reference case is replayed: its claims are not this test's."""

    def __getattr__(self, name):
        if name in CLAIMS:
            return lambda *args, **kwargs: self
        raise AttributeError(name)
