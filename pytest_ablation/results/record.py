"""The record of one ``ablation.run`` call: what a case produces, and the one place its
fields are named.

A case (``pytest_ablation.run.ablation``) makes one record per ``ablation.run`` call, where the
videos were generated, and sends it to the controller with its test report. The report
(``results.report_json``) files each record under its study as a variant entry, which keeps
each of its numbers once (``results.model`` reads them); a merge (``results.merge``) reads
the variant entries of reports back into records.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Iterable, Mapping

# Every record has these fields, in this order.
RECORD_FIELDS = (
    "study",
    "variant",
    "reference",
    "is_reference",
    "nodeid",
    "generator",
    "generator_identity",
    "config",
    "reference_config",
    "settings",
    "samples",
    "metrics",
    "expectations",
)
# What a study's variant entry in report.json holds: a record without its study, in this order.
VARIANT_FIELDS = (
    "variant",
    "reference",
    "is_reference",
    "nodeid",
    "generator",
    "generator_identity",
    "config",
    "reference_config",
    "settings",
    "samples",
    "expectations",
    "metrics",
)
# Added where the pictures of the variant were saved (paths relative to the report folder).
MEDIA_FIELDS = ("media", "videos")
# Added where the study has set-level metrics (FVD): metric -> ``SetMetricResult.to_dict()``.
SET_METRICS_FIELD = "set_metrics"
# Added where the generator describes its samples (``info["details"]`` of its videos, e.g.
# the noise a sampler achieved): name -> {"value": mean over the samples, "samples": [...]}.
DETAILS_FIELD = "details"
# Added by the report where the collection order is known: the variant's place among its
# study's collected cases (its parametrize order, from 0), which orders the study's
# variants in every table; a second ``ablation.run`` call ("v#2") shares its case's.
POSITION_FIELD = "position"


def make_record(
    *,
    study: str,
    variant: str,
    reference: str,
    is_reference: bool,
    nodeid: str,
    generator: str,
    generator_identity: Mapping[str, Any],
    config: Mapping[str, Any],
    reference_config: Mapping[str, Any],
    settings: Mapping[str, Any],
    samples: Iterable[Mapping[str, Any]],
    metrics: Mapping[str, Mapping[str, Any]],
    set_metrics: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A new record; its claims (``expectations``) are appended as the test checks them."""
    record = {
        "study": study,
        "variant": variant,
        "reference": reference,
        "is_reference": is_reference,
        "nodeid": nodeid,
        "generator": generator,
        "generator_identity": generator_identity,
        "config": config,
        "reference_config": reference_config,
        "settings": settings,
        "samples": list(samples),
        "metrics": dict(metrics),
        "expectations": [],
    }
    if set_metrics:
        record[SET_METRICS_FIELD] = {name: dict(set_metrics[name]) for name in sorted(set_metrics)}
    return record


def sample_entry(prompt: str, seed_index: int, seed: int, video: str) -> dict[str, Any]:
    """One (prompt, seed) of a record: ``video`` is the cache key of its generated video."""
    return {"prompt": prompt, "seed_index": seed_index, "seed": seed, "video": video}


def metric_entry(
    *,
    direction: str,
    delta: Mapping[str, Any],
    samples: Iterable[float],
    reference_samples: Iterable[float],
    per_frame: Iterable[Iterable[float] | None],
    details: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """One metric of a record: the paired delta's fields (``PairedDelta.to_dict``), then the
    per-sample values of the variant and its reference, and the per-frame values."""
    return {
        "direction": direction,
        **delta,
        "samples": list(samples),
        "reference_samples": list(reference_samples),
        "per_frame": [list(p) if p is not None else None for p in per_frame],
        "details": dict(details or {}),
    }


def variant_entry(record: Mapping[str, Any], position: int | None = None) -> dict[str, Any]:
    """The record as its study's variant entry: its place in the collection (``position``,
    when known), its metrics sorted by name, and its pictures' paths when it has any."""
    entry = {field: record[field] for field in VARIANT_FIELDS if field != "metrics"}
    if position is not None:
        entry = {"variant": entry.pop("variant"), POSITION_FIELD: position, **entry}
    entry["metrics"] = {m: record["metrics"][m] for m in sorted(record["metrics"])}
    for optional in (SET_METRICS_FIELD, DETAILS_FIELD, *MEDIA_FIELDS):
        if optional in record:
            entry[optional] = record[optional]
    return entry


def missing_fields(entry: Mapping[str, Any]) -> list[str]:
    """The fields a variant entry lacks (none, for an entry of a full report.json)."""
    return [field for field in VARIANT_FIELDS if field not in entry]


def case_variant(variant: str) -> str:
    """The case a record's variant belongs to: the second ``ablation.run`` call of case "v"
    records variant "v#2"."""
    return variant.split("#", 1)[0]


def call_number(variant: str) -> int:
    """Which ``ablation.run`` call of its case a record's variant is (1 for "v", 2 for "v#2")."""
    _, mark, number = variant.partition("#")
    return int(number) if mark and number.isdigit() else 1


def record_of(study: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The record a variant entry of ``study`` was made from (with its ``position``, when the
    entry has one, so that a merge keeps the collection order)."""
    return {**entry, "study": study}


def generator_details(videos: Iterable[Any]) -> dict[str, Any]:
    """What the generator reported about each of a variant's samples (the numbers under
    ``info["details"]`` of its stored videos), by name: their mean over the samples that
    report it, and each sample's value in sample order (None where a sample lacks it)."""
    per_sample = [dict((getattr(v, "info", None) or {}).get("details") or {}) for v in videos]
    names = sorted(
        {
            name
            for d in per_sample
            for name, value in d.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        }
    )
    details = {}
    for name in names:
        values = [d.get(name) if isinstance(d.get(name), (int, float)) else None for d in per_sample]
        present = [float(v) for v in values if v is not None]
        details[name] = {"value": sum(present) / len(present), "samples": values}
    return details
