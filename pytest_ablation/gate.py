"""Comparing a run's results with a baseline: the CI gate.

The gate compares each (study, variant, metric) value of this run with the baseline's,
in the metric's direction and within its tolerance. It is the one implementation used by
``--ablation-gate`` and by ``pytest-ablation compare``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

FAILING = ("regressed", "missing")


@dataclass(frozen=True)
class GateRow:
    study: str
    variant: str
    metric: str
    status: str  # ok | improved | regressed | missing | not run | new | info
    baseline: float | None
    current: float | None
    tolerance: float | None
    direction: str

    @property
    def change(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline

    def to_dict(self) -> dict:
        return {
            "study": self.study,
            "variant": self.variant,
            "metric": self.metric,
            "status": self.status,
            "direction": self.direction,
            "baseline": self.baseline,
            "current": self.current,
            "change": self.change,
            "tolerance": self.tolerance,
        }


def registered_tolerance(metric: str, entry: dict | None = None) -> float:
    """The metric's default tolerance from the registry; 0 for a metric no longer known."""
    from .metrics.registry import get_metric

    try:
        return float(get_metric(metric).tolerance)
    except ValueError:
        return 0.0


def judge(direction: str, baseline: float, current: float, tolerance: float) -> str:
    if direction == "higher":
        worse, better = current < baseline - tolerance, current > baseline + tolerance
    elif direction == "lower":
        worse, better = current > baseline + tolerance, current < baseline - tolerance
    else:
        return "info"
    return "regressed" if worse else "improved" if better else "ok"


def compare(
    baseline_results: Iterable[dict],
    current_results: Iterable[dict],
    *,
    ran: set[tuple[str, str]] | None = None,
    tolerances: Mapping[str, float] | None = None,
    default_tolerance=registered_tolerance,
    directions: Mapping[str, str] | None = None,
) -> list[GateRow]:
    """Judge every baseline entry against this run.

    ``ran`` is the set of (study, variant) cases this run selected; a baseline entry outside
    it was not run (``-k``), which is no failure. A selected case that lacks a metric the
    baseline has is a failure: the metric went missing.
    """
    current = {(r["study"], r["variant"], r["metric"]): r for r in current_results}
    if ran is None:
        ran = {(s, v) for s, v, _ in current}
    rows = []
    seen = set()
    for entry in baseline_results:
        key = (entry["study"], entry["variant"], entry["metric"])
        seen.add(key)
        direction = (directions or {}).get(entry["metric"], entry.get("direction", "info"))
        tolerance = (tolerances or {}).get(entry["metric"])
        if tolerance is None:
            tolerance = default_tolerance(entry["metric"], entry)
        now = current.get(key)
        if key[:2] not in ran:
            status, value = "not run", None
        elif now is None:
            status, value = "missing", None
        else:
            value = float(now["value"])
            status = judge(direction, float(entry["value"]), value, tolerance)
        rows.append(GateRow(*key, status, float(entry["value"]), value, tolerance, direction))
    for key, now in current.items():
        if key not in seen:
            rows.append(GateRow(*key, "new", None, float(now["value"]), None, now.get("direction", "info")))
    return sorted(rows, key=lambda r: (r.study, r.variant, r.metric))


def summarize(rows: list[GateRow], baseline: str) -> dict:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    failed = any(row.status in FAILING for row in rows)
    order = ("regressed", "missing", "ok", "improved", "info", "new", "not run")
    summary = ", ".join(f"{counts[s]} {s}" for s in order if counts.get(s))
    return {
        "baseline": str(baseline),
        "failed": failed,
        "counts": counts,
        "summary": summary or "nothing to compare",
        "rows": [row.to_dict() for row in rows],
    }
