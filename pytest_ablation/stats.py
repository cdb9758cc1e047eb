"""Paired deltas between a variant and its reference, with a bootstrap interval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class PairedDelta:
    variant: float
    reference: float
    delta: float
    low: float
    high: float
    n: int
    confidence: float

    def to_dict(self) -> dict:
        return {
            "value": self.variant,
            "reference_value": self.reference,
            "delta": self.delta,
            "ci": [self.low, self.high],
            "n": self.n,
            "confidence": self.confidence,
        }


def paired_delta(
    variant: Sequence[float],
    reference: Sequence[float],
    *,
    seed: int,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
) -> PairedDelta:
    """Mean difference ``variant - reference`` over paired samples and its percentile interval.

    Samples are (prompt, seed) pairs shared by the variant and its reference, so the
    bootstrap resamples pairs, not the two sides independently: what varies between prompts
    cancels out of the delta. The resampling generator is seeded so the interval is the
    same on every run and every worker.
    """
    v = np.asarray(variant, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if v.shape != r.shape or v.ndim != 1:
        raise ValueError(
            f"paired samples must be two equally long lists, got {v.shape} and {r.shape}"
        )
    if v.size == 0:
        raise ValueError("paired samples are empty: a study needs at least one prompt and seed")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    diffs = v - r
    delta = float(diffs.mean())
    if v.size == 1:
        low = high = delta
    else:
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, v.size, size=(resamples, v.size))
        means = diffs[picks].mean(axis=1)
        tail = (1.0 - confidence) / 2.0
        low, high = (float(x) for x in np.quantile(means, [tail, 1.0 - tail]))
        # Quantiles of a sum of floats can land one ulp outside the point estimate when
        # every resample is identical; an interval must contain its own estimate.
        low, high = min(low, delta), max(high, delta)
    return PairedDelta(
        variant=float(v.mean()),
        reference=float(r.mean()),
        delta=delta,
        low=low,
        high=high,
        n=int(v.size),
        confidence=confidence,
    )
