"""Comparing a run's results with a baseline: the CI gate.

The gate compares each (study, variant, metric) value of this run with the baseline's,
in the metric's direction and within its tolerance. ``judge_reports`` is the one judgement
used by ``--ablation-gate`` and by ``pytest-ablation compare``: both hand it a baseline
report and a report.json, so they agree on every case.

What a case's outcome means to the gate (``cases`` of report.json):

- deselected (``-k``, ``-m``, node ids, another shard), skipped, or its file not collected:
  *not run* / *skipped*, no failure;
- errored, claim failed, or selected but never finished: a failure with the reason;
- a value that is not a number: a failure (*nan*);
- a baseline case that no longer exists in a collected file: a failure (*deleted*).

Set-level metrics (FVD, a variant's ``set_metrics`` in report.json) are gated too, never ignored: a
sampled set's FVD moves with the sample, so such a value is judged by its bootstrap interval
rather than by itself. It regressed when its whole interval lies beyond the baseline's value
by more than the tolerance (for FVD, lower is better: the interval's low end above baseline
+ tolerance), improved when the whole interval lies on the better side, and is ok otherwise.
"""

from __future__ import annotations

import json

import math
from dataclasses import dataclass
from typing import Any, cast
from collections.abc import Callable, Iterable, Mapping

from .model import Comparison, Report, SetValue

FAILING = ("regressed", "missing", "error", "failed", "unfinished", "nan", "deleted")
# Case outcomes recorded in report.json, and the gate status each one gives.
CASE_STATUS = {
    "deselected": "not run",
    "skipped": "skipped",
    "error": "error",
    "failed": "failed",
    "unfinished": "unfinished",
}
SCORED_OUTCOMES = ("passed", "xfailed")


class GateInputError(ValueError):
    """A report the gate cannot judge (e.g. one that does not record its cases)."""


@dataclass(frozen=True)
class GateRow:
    study: str
    variant: str
    metric: str
    status: str  # ok | improved | regressed | missing | not run | new | info | skipped |
    #              error | failed | unfinished | nan | deleted
    baseline: float | None
    current: float | None
    tolerance: float | None
    direction: str
    reason: str | None = None

    @property
    def change(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline

    def to_dict(self) -> dict[str, Any]:
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
            "reason": self.reason,
        }


def registered_tolerance(metric: str, entry: dict[str, Any] | None = None) -> float:
    """The metric's default tolerance from the registry; 0 for a metric no longer known."""
    from ..metrics.registry import get_metric

    try:
        return float(get_metric(metric).tolerance)
    except ValueError:
        return 0.0


def unknown_tolerance(tolerances: Iterable[str], known: Iterable[str], source: str) -> str | None:
    """Why a tolerance names no known metric (the first that does not), or None: a tolerance
    for a misspelt metric would be accepted and never used, leaving the real one at its
    default."""
    from ..suggest import closest

    known = sorted(set(known))
    for name in tolerances:
        if name in known:
            continue
        close = closest(name, known)
        hint = f"did you mean {close!r}?" if close else f"the known metrics are: {', '.join(known) or 'none'}"
        return f"{source}: no metric named {name!r}, so its tolerance would never be used; {hint}"
    return None


def report_metrics(*reports: Report | Mapping[str, Any]) -> set[str]:
    """The metrics that reports name: their metric table and their variants'."""
    names: set[str] = set()
    for report in reports:
        names |= as_report(report).metric_names()
    return names


def as_report(report: Report | Mapping[str, Any]) -> Report:
    """``report`` as the typed model: a report.json document (already checked by
    ``load_report``) is read into it."""
    return report if isinstance(report, Report) else Report.from_json(report)


def number(value: object) -> float | None:
    """``value`` as a finite float, or None (NaN, infinite, null, or not a number at all)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def judge(direction: str, baseline: float, current: float | None, tolerance: float) -> str:
    if number(current) is None:
        return "nan"  # never passes, whatever the direction
    # number() is None for None, so ``current`` is a number here.
    return _judge_interval(direction, baseline, cast(float, current), cast(float, current), tolerance)


def judge_set(direction: str, baseline: float, current: SetValue, tolerance: float) -> str:
    """A set-level value against the baseline's value: by its bootstrap interval (``low``,
    ``high``); the reference set itself has none and is judged by its value."""
    value = number(current.value)
    if value is None:
        return "nan"
    low, high = number(current.low), number(current.high)
    return _judge_interval(
        direction, baseline, value if low is None else low, value if high is None else high, tolerance
    )


def _judge_interval(direction: str, baseline: float, low: float, high: float, tolerance: float) -> str:
    """Regressed when all of [low, high] is worse than the baseline by more than the
    tolerance, improved when all of it is better; a single value has low == high."""
    if direction == "higher":
        worse, better = high < baseline - tolerance, low > baseline + tolerance
    elif direction == "lower":
        worse, better = low > baseline + tolerance, high < baseline - tolerance
    else:
        return "info"
    return "regressed" if worse else "improved" if better else "ok"


def _set_reason(now: SetValue) -> str:
    low, high = number(now.low), number(now.high)
    if low is None or high is None:
        return "set-level metric, the reference set itself"
    return f"set-level metric, judged by its bootstrap interval [{low:.4g}, {high:.4g}]"


def compare(
    baseline_results: Iterable[dict[str, Any]],
    current_results: Iterable[dict[str, Any]],
    *,
    ran: set[tuple[str, str]] | None = None,
    tolerances: Mapping[str, float] | None = None,
    default_tolerance: Callable[[str, dict[str, Any]], float] = registered_tolerance,
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
            value = number(now["value"])
            status = judge(direction, float(entry["value"]), value, tolerance)
        rows.append(
            GateRow(
                *key,
                status,
                float(entry["value"]),
                value,
                tolerance,
                direction,
                NAN_REASON if status == "nan" else None,
            )
        )
    for key, now in current.items():
        if key not in seen:
            value, direction = number(now["value"]), now.get("direction", "info")
            status = "nan" if value is None else "new"
            rows.append(GateRow(*key, status, None, value, None, direction, NAN_REASON if status == "nan" else None))
    return sorted(rows, key=lambda r: (r.study, r.variant, r.metric))


NAN_REASON = "the value is not a number (NaN or infinite)"


def _variant_case(variant: str) -> str:
    # The second ablation.run call of a case records variant "v#2": its case is "v".
    return variant.split("#", 1)[0]


def _profile_name(report: Mapping[str, Any]) -> str | None:
    profile = report.get("profile")
    name = profile.get("name") if isinstance(profile, dict) else None
    return name if isinstance(name, str) else None


def profile_mismatch(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """Why ``current`` cannot be judged against ``baseline``: they were made on different
    profiles (other models, sizes and settings: their numbers do not compare). None when
    they were made on the same one, or a report does not say."""
    return _profile_mismatch(_profile_name(baseline), _profile_name(current))


def _profile_mismatch(then: str | None, now: str | None) -> str | None:
    if then is None or now is None or then == now:
        return None
    return (
        f"the baseline was made on profile {then!r} and this report on profile {now!r}; "
        f"their numbers do not compare: gate against a baseline saved from profile {now!r} "
        f"(pytest --ablation-profile {now} --ablation-save-baseline FILE)"
    )


def _shown(value: Any, width: int = 60) -> str:
    text = "absent" if value is None else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def configuration_differences(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What the two reports record of how they were made, where it differs: the profile's
    settings, method tables and models, and the packages' versions. A failed gate shows
    them, since a regression is as often a changed set-up as a changed method."""
    lines: list[str] = []

    def walk(where: str, then: Any, now: Any) -> None:
        if isinstance(then, dict) and isinstance(now, dict):
            for key in sorted(set(then) | set(now), key=str):
                walk(f"{where}.{key}", then.get(key), now.get(key))
        elif then != now:
            lines.append(f"{where}: {_shown(then)} -> {_shown(now)}")

    profiles: list[Any] = [
        report.get("profile") if isinstance(report.get("profile"), dict) else {} for report in (baseline, current)
    ]
    for part in ("settings", "methods", "models"):
        walk(f"profile.{part}", profiles[0].get(part), profiles[1].get(part))
    packages = [
        (report.get("environment") or {}).get("packages") if isinstance(report.get("environment"), dict) else None
        for report in (baseline, current)
    ]
    walk("packages", packages[0], packages[1])
    return lines


def judge_reports(
    baseline: Report | Mapping[str, Any],
    current: Report | Mapping[str, Any],
    *,
    tolerances: Mapping[str, float] | None = None,
) -> list[GateRow]:
    """Judge ``current`` (a report) against ``baseline``, case by case and metric by metric.

    Tolerances: ``tolerances`` (command line or ini), else the tolerance the current report
    records for the metric, else the baseline's, else the registry's. Directions: the current
    report's, else the baseline entry's.
    """
    then_report, now_report = as_report(baseline), as_report(current)
    mismatch = _profile_mismatch(then_report.profile_name, now_report.profile_name)
    if mismatch:
        raise GateInputError(mismatch)
    if now_report.cases is None:
        raise GateInputError(
            "the report does not record its cases (report version "
            f"{now_report.version!r}); it cannot say what ran; rerun the studies"
        )
    tolerances = dict(tolerances or {})

    def tolerance_of(metric: str) -> float:
        for value in (
            tolerances.get(metric),
            getattr(now_report.metrics.get(metric), "tolerance", None),
            getattr(then_report.metrics.get(metric), "tolerance", None),
        ):
            if number(value) is not None:
                return float(cast(float, value))
        return registered_tolerance(metric)

    def direction_of(value: Comparison | SetValue) -> str:
        return getattr(now_report.metrics.get(value.metric), "direction", None) or value.direction

    cases = {(c.study, c.variant): c for c in now_report.cases}
    results = {value.key: value for value in now_report.values}
    rows: list[GateRow] = []
    judged_cases = set()
    for entry in then_report.values:
        key = entry.key
        case_key = (entry.study, _variant_case(entry.variant))
        direction = direction_of(entry)
        tolerance = tolerance_of(entry.metric)
        then = number(entry.value)
        case = cases.get(case_key)
        now = results.get(key)
        value, reason = None, None
        if case is None:
            nodeid = then_report.nodeids.get(case_key) or then_report.nodeids.get(key[:2])
            if now_report.selection.collected(nodeid):
                status = "deleted"
                reason = (
                    f"{nodeid} is no longer in the code (the baseline has it; this run collected its file)"
                    if nodeid
                    else "no longer in the code"
                )
            else:
                status = "not run"
                reason = f"{nodeid.split('::', 1)[0]} was not collected" if nodeid else "not collected"
        elif case.outcome not in SCORED_OUTCOMES:
            status, reason = CASE_STATUS.get(case.outcome, "error"), case.reason
            judged_cases.add(case_key)
        elif now is None:
            status, reason = "missing", "the case ran but did not report this metric"
        elif then is None:
            # load_report refuses such a baseline; a report handed over directly may have one.
            value, status, reason = number(now.value), "nan", "the baseline's value is not a number"
        else:
            value = number(now.value)
            if isinstance(now, SetValue):
                status = judge_set(direction, then, now, tolerance)
                reason = NAN_REASON if status == "nan" else _set_reason(now)
            else:
                status = judge(direction, then, value, tolerance)
                reason = NAN_REASON if status == "nan" else None
        rows.append(GateRow(*key, status, then, value, tolerance, direction, reason))
    baseline_keys = {entry.key for entry in then_report.values}
    for key, now in results.items():
        if key in baseline_keys:
            continue
        case = cases.get((key[0], _variant_case(key[1])))
        if case is not None and case.outcome not in SCORED_OUTCOMES:
            continue  # reported once per case below
        value, direction = number(now.value), direction_of(now)
        status = "nan" if value is None else "new"
        rows.append(GateRow(*key, status, None, value, None, direction, NAN_REASON if status == "nan" else None))
    for case_key, case in cases.items():
        case_status = CASE_STATUS.get(case.outcome)
        if case_status in FAILING and case_key not in judged_cases:
            rows.append(GateRow(*case_key, "—", case_status, None, None, None, "info", case.reason))
    return sorted(rows, key=lambda r: (r.study, r.variant, r.metric))


def gate_verdict(
    baseline: Report | Mapping[str, Any],
    current: Report | Mapping[str, Any],
    baseline_name: str,
    *,
    tolerances: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The gate's verdict on ``current`` against ``baseline`` (``summarize``'s dict), with the
    configuration differences of the two reports when it fails."""
    then, now = as_report(baseline), as_report(current)
    gate = summarize(judge_reports(then, now, tolerances=tolerances), baseline_name)
    gate["differences"] = configuration_differences(then.document, now.document) if gate["failed"] else []
    return gate


def summarize(rows: list[GateRow], baseline: str) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    failed = any(row.status in FAILING for row in rows)
    order = (
        "regressed",
        "missing",
        "error",
        "failed",
        "unfinished",
        "nan",
        "deleted",
        "ok",
        "improved",
        "info",
        "new",
        "skipped",
        "not run",
    )
    summary = ", ".join(f"{counts[s]} {s}" for s in order if counts.get(s))
    return {
        "baseline": str(baseline),
        "failed": failed,
        "counts": counts,
        "summary": summary or "nothing to compare",
        "rows": [row.to_dict() for row in rows],
    }
