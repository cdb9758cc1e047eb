"""Reading the report.json that a test's run wrote: one reader for every test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def report_of(where: Any, folder: str = "reports") -> dict:
    """The report.json of a run.

    ``where`` is a pytester, a project folder (the report is ``folder/report.json`` in it; give
    ``folder="."`` for a folder that holds report.json itself), or the report file. The file
    is read as strict JSON: NaN or Infinity in it fails the test, since other JSON readers
    refuse them.
    """
    path = Path(getattr(where, "path", where))
    if path.suffix != ".json":
        path = path / folder / "report.json"

    def refuse(token: str) -> None:
        raise ValueError(f"{path}: {token} is not JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


# The fields of a variant's metric entry that a comparison row shows (report.json versions 1
# and 2 stored these rows as ``results``; version 3 keeps each number once, in the entry).
ROW_FIELDS = (
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


def result_rows(report: dict) -> list[dict]:
    """Every (study, variant, metric) comparison of a report as a flat row, in the report's
    order: read from the variant entries, where report.json keeps the numbers."""
    return [
        {
            "study": study["study"],
            "variant": variant["variant"],
            "reference": variant["reference"],
            "metric": metric,
            **{name: entry.get(name) for name in ROW_FIELDS},
        }
        for study in report["studies"]
        for variant in study["variants"]
        for metric, entry in sorted(variant["metrics"].items())
    ]


def set_rows(report: dict) -> list[dict]:
    """Every set-level value (FVD) of a report, with its study, variant and metric."""
    return [
        {"study": study["study"], "variant": variant["variant"], "metric": metric, **entry}
        for study in report["studies"]
        for variant in study["variants"]
        for metric, entry in sorted((variant.get("set_metrics") or {}).items())
    ]


def metric_entries(report: dict):
    """``(study, variant, metric, entry)`` for every metric of every variant, the entry being
    report.json's own dict: a test changes a number of a report through it."""
    for study in report["studies"]:
        for variant in study["variants"]:
            for metric, entry in sorted(variant["metrics"].items()):
                yield study["study"], variant["variant"], metric, entry
