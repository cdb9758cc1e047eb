"""What a run produced, as typed values: the form in which every reader takes a report.

report.json is written by ``report_json.build_report`` and read back here, by
``Report.from_json``, once its schema is checked (``report_json.load_report``). Each number
is stored once in report.json, in its variant's entry (``studies[].variants[]``):

- ``metrics``: a metric's paired comparison with the reference (a ``Comparison``);
- ``set_metrics``: a set-level metric such as FVD (a ``SetValue``);
- ``expectations``: the claims checked on it (a ``Claim``).

Version 1 and 2 reports repeated the comparisons as rows of ``results`` and ``set_results``;
they are still read, and a row that disagrees with its variant's entry is refused, since the
two readings of one number would differ.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

# The fields of a ``Comparison`` that report.json's version 1 and 2 ``results`` rows repeat.
COMPARISON_FIELDS = (
    "direction",
    "value",
    "reference_value",
    "delta",
    "ci",
    "n",
    "confidence",
    "n_samples",
    "spread",
    "p_value",
    "mde",
    "family",
    "p_adjusted",
    "significant",
)
# The fields of a ``SetValue`` that version 1 and 2 ``set_results`` rows repeat.
SET_VALUE_FIELDS = (
    "direction",
    "value",
    "low",
    "high",
    "confidence",
    "n_variant",
    "n_reference",
    "reference",
    "is_reference",
    "resamples",
    "seed",
    "warning",
)

Key = tuple[str, str, str]


class ReportMismatch(ValueError):
    """A version 1 or 2 report whose ``results`` row says another thing than its variant's entry."""


@dataclass(frozen=True)
class Comparison:
    """One metric of one variant against its reference: the mean of the paired deltas over the
    samples, with its interval and, where the study has several variants, its p-value."""

    study: str
    variant: str
    reference: str
    metric: str
    direction: str
    value: float | None
    reference_value: float | None = None
    delta: float | None = None
    ci: tuple[float | None, float | None] | None = None
    n: int | None = None
    confidence: float | None = None
    n_samples: int | None = None
    spread: float | None = None
    p_value: float | None = None
    mde: float | None = None
    family: str | None = None
    p_adjusted: float | None = None
    significant: bool | None = None
    level: str = field(default="paired", init=False)

    @property
    def key(self) -> Key:
        return (self.study, self.variant, self.metric)

    def row(self) -> dict[str, Any]:
        """The comparison as a flat row, the shape of ``show``'s output and of the trackers' tables."""
        row: dict[str, Any] = {
            "study": self.study,
            "variant": self.variant,
            "reference": self.reference,
            "metric": self.metric,
        }
        for name in COMPARISON_FIELDS:
            value = getattr(self, name)
            row[name] = list(value) if isinstance(value, tuple) else value
        return row


@dataclass(frozen=True)
class SetValue:
    """A set-level metric of one variant (FVD): one value for the variant's whole set of videos
    against its reference's set, with a bootstrap interval over the videos."""

    study: str
    variant: str
    metric: str
    direction: str
    value: float | None
    low: float | None = None
    high: float | None = None
    confidence: float | None = None
    n_variant: int | None = None
    n_reference: int | None = None
    reference: str | None = None
    is_reference: bool | None = None
    resamples: int | None = None
    seed: int | None = None
    warning: str | None = None
    level: str = field(default="set", init=False)

    @property
    def key(self) -> Key:
        return (self.study, self.variant, self.metric)

    def row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"study": self.study, "variant": self.variant, "metric": self.metric}
        row.update((name, getattr(self, name)) for name in SET_VALUE_FIELDS)
        return row


@dataclass(frozen=True)
class Claim:
    """A claim a study declared on a variant's metric, and its verdict."""

    study: str
    variant: str
    metric: str
    claim: str
    margin: float | None
    verdict: str | None
    family: str | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    n: int | None = None
    # The number of samples an inconclusive claim would need to be decided.
    would_need: int | None = None


@dataclass(frozen=True)
class CaseOutcome:
    """What happened to one ablation case of the collected files."""

    study: str
    variant: str
    nodeid: str | None
    outcome: str
    reason: str | None = None


@dataclass(frozen=True)
class Selection:
    """The paths a run collected: a baseline case missing from a collected file was deleted."""

    paths: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()

    def collected(self, nodeid: str | None) -> bool:
        """Whether the run collected the file of ``nodeid``."""
        if not nodeid:
            return False
        path = nodeid.split("::", 1)[0]

        def under(root: str) -> bool:
            root = root.rstrip("/")
            return root in ("", ".") or path == root or path.startswith(root + "/")

        if any(under(p) for p in self.ignored):
            return False
        return path in self.files or any(under(p) for p in self.paths)


@dataclass(frozen=True)
class MetricInfo:
    """What a report says of a metric: its direction, its gate tolerance and its definition."""

    direction: str | None = None
    tolerance: float | None = None
    definition: str | None = None
    source: str | None = None
    level: str | None = None


@dataclass(frozen=True)
class Report:
    """A report.json, read."""

    version: int
    created: str | None
    profile_name: str | None
    metrics: Mapping[str, MetricInfo]
    comparisons: tuple[Comparison, ...]
    set_values: tuple[SetValue, ...]
    claims: tuple[Claim, ...]
    cases: tuple[CaseOutcome, ...] | None
    selection: Selection
    # (study, variant) -> the test that made it, from the cases and the variant entries.
    nodeids: Mapping[tuple[str, str], str | None]
    packages: Mapping[str, str | None]
    # The document itself, for what the model leaves free-form (a variant's configuration,
    # samples, media; the profile's tables; the environment).
    document: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def values(self) -> tuple[Comparison | SetValue, ...]:
        """Every gated number: the comparisons, then the set-level values."""
        return (*self.comparisons, *self.set_values)

    def metric_names(self) -> set[str]:
        return set(self.metrics) | {value.metric for value in self.values}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Report:
        """The model of a report.json document that matches the schema (any readable version)."""
        comparisons: list[Comparison] = []
        set_values: list[SetValue] = []
        claims: list[Claim] = []
        nodeids: dict[tuple[str, str], str | None] = {}
        for study in data.get("studies") or ():
            name = study["study"]
            for entry in study.get("variants") or ():
                variant = entry["variant"]
                nodeids[(name, variant)] = entry.get("nodeid")
                for metric, m in sorted((entry.get("metrics") or {}).items()):
                    comparisons.append(_comparison(name, variant, entry["reference"], metric, m))
                for metric, s in sorted((entry.get("set_metrics") or {}).items()):
                    set_values.append(_set_value(name, variant, metric, s))
                claims.extend(_claim(name, variant, e) for e in entry.get("expectations") or ())
        if "results" in data:
            _check_rows(data["results"], comparisons, "results", COMPARISON_FIELDS)
        if "set_results" in data:
            _check_rows(data["set_results"], set_values, "set_results", SET_VALUE_FIELDS)
        cases = None
        if isinstance(data.get("cases"), list):
            cases = tuple(
                CaseOutcome(c["study"], c["variant"], c.get("nodeid"), c["outcome"], c.get("reason"))
                for c in data["cases"]
            )
            for case in cases:
                nodeids[(case.study, case.variant)] = case.nodeid
        selection = data.get("selection") or {}
        profile = data.get("profile")
        profile_name = profile.get("name") if isinstance(profile, Mapping) else None
        environment = data.get("environment") if isinstance(data.get("environment"), Mapping) else {}
        return cls(
            version=data["version"],
            created=data.get("created"),
            profile_name=profile_name if isinstance(profile_name, str) else None,
            metrics={
                name: MetricInfo(**{f.name: info.get(f.name) for f in fields(MetricInfo)})
                for name, info in sorted((data.get("metrics") or {}).items())
            },
            comparisons=tuple(comparisons),
            set_values=tuple(set_values),
            claims=tuple(claims),
            cases=cases,
            selection=Selection(
                tuple(selection.get("paths", ())),
                tuple(selection.get("files", ())),
                tuple(selection.get("ignored", ())),
            ),
            nodeids=nodeids,
            packages=dict((environment or {}).get("packages") or {}),
            document=data,
        )


def _comparison(study: str, variant: str, reference: str, metric: str, m: Mapping[str, Any]) -> Comparison:
    ci = m.get("ci")
    return Comparison(
        study=study,
        variant=variant,
        reference=reference,
        metric=metric,
        direction=m.get("direction") or "info",
        value=m.get("value"),
        reference_value=m.get("reference_value"),
        delta=m.get("delta"),
        ci=(ci[0], ci[1]) if isinstance(ci, list) else None,
        n=m.get("n"),
        confidence=m.get("confidence"),
        n_samples=m.get("n_samples"),
        spread=m.get("spread"),
        p_value=m.get("p_value"),
        mde=m.get("mde"),
        family=m.get("family"),
        p_adjusted=m.get("p_adjusted"),
        significant=m.get("significant"),
    )


def _set_value(study: str, variant: str, metric: str, s: Mapping[str, Any]) -> SetValue:
    return SetValue(
        study=study,
        variant=variant,
        metric=metric,
        direction=s.get("direction") or "info",
        **{name: s.get(name) for name in SET_VALUE_FIELDS if name != "direction"},
    )


def _claim(study: str, variant: str, e: Mapping[str, Any]) -> Claim:
    return Claim(
        study=study,
        variant=variant,
        metric=e["metric"],
        claim=e["claim"],
        margin=e.get("margin"),
        verdict=e.get("verdict"),
        family=e.get("family"),
        p_value=e.get("p_value"),
        p_adjusted=e.get("p_adjusted"),
        n=e.get("n"),
        would_need=e.get("would_need") if isinstance(e.get("would_need"), int) else None,
    )


def _check_rows(rows: list[Mapping[str, Any]], values: list[Any], where: str, names: tuple[str, ...]) -> None:
    """Refuse an old report whose rows disagree with its variant entries; fill what an old
    entry lacks from its row."""
    by_key = {value.key: index for index, value in enumerate(values)}
    for index, row in enumerate(rows):
        key = (row["study"], row["variant"], row["metric"])
        label = f"{where}[{index}] ({' '.join(key)})"
        if key not in by_key:
            raise ReportMismatch(f"{label} has no entry under its study's variants")
        value = values[by_key[key]]
        filled = {}
        for name in names:
            if name not in row:
                continue
            said, kept = row[name], getattr(value, name)
            if isinstance(kept, tuple):
                kept = list(kept)
            if kept is None and said is not None and name != "direction":
                filled[name] = tuple(said) if isinstance(said, list) else said
            elif said != kept and not (name == "direction" and kept == "info" and said is None):
                raise ReportMismatch(f"{label}: {name} is {said!r} there and {kept!r} in its variant's entry")
        if filled:
            values[by_key[key]] = _replaced(value, filled)


def _replaced(value: Any, changes: Mapping[str, Any]) -> Any:
    import dataclasses

    return dataclasses.replace(value, **changes)


def comparison_rows(report: Report) -> Iterator[dict[str, Any]]:
    """Every comparison of ``report`` as a flat row, in the report's order."""
    for comparison in report.comparisons:
        yield comparison.row()
