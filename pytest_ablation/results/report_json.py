"""The report as data: one JSON document, deterministically ordered."""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, cast
from collections.abc import Iterable

from ..files import strict_json
from .record import (
    POSITION_FIELD,
    call_number,
    case_variant,
    variant_entry,
)
from ..stats.inference import annotate
from .model import Report, ReportMismatch
from .schema import schema_problem

REPORT_FORMAT = "pytest-ablation-report"
REPORT_VERSION = 3
# Version 1 reports did not record each case's outcome (``cases``, ``selection``); they are
# still read as baselines, whose results and node ids are all the gate needs of them.
# Versions 1 and 2 repeated every variant's numbers as rows of ``results`` and
# ``set_results``; version 3 keeps each number once, in its variant's entry (``model``).
READABLE_VERSIONS = (1, 2, 3)
CASE_OUTCOMES = ("passed", "failed", "error", "xfailed", "skipped", "deselected", "unfinished")

_VERSIONED = (
    "pytest-ablation",
    "pytest",
    "pytest-xdist",
    "hypothesis",
    "torch",
    "torchvision",
    "diffusers",
    "transformers",
    "open_clip_torch",
    "numpy",
)


class ReportError(ValueError):
    pass


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(folder: Path) -> dict[str, Any] | None:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def environment(rootdir: Path, workers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "git": git_commit(rootdir),
        "workers": {name: workers[name] for name in sorted(workers)},
    }


def build_report(
    records: Iterable[dict[str, Any]],
    *,
    profile: dict[str, Any],
    environment: dict[str, Any],
    metric_info: dict[str, dict[str, Any]],
    cache: dict[str, Any] | None = None,
    created: str | None = None,
    shard: tuple[int, int] | None = None,
    cases: Iterable[dict[str, Any]] | None = None,
    selection: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the report from the variant records the tests produced.

    Everything that depends on the run's scheduling (which worker, in which order) lives
    under ``environment`` and ``cache``; ``studies`` are ordered by study, then by the study's
    variants in collection (parametrize) order, each variant's metrics by name, so that
    the same run on 1 or N workers gives the same document there. ``cases`` is every
    ablation case of the collected files with its outcome, in collection order (as the
    catalogue lists them), and ``selection`` the paths this run collected: together they say
    what ran and what happened. Each variant entry records its place in that order
    (``position``), so that a merge of shards or a saved report keeps it; a record that
    already has one (read back from a report) keeps its own. Variants whose place is unknown
    (no cases given) follow, by name. Non-finite numbers become null, so that report.json is
    strict JSON.
    """
    cases = list(cases) if cases is not None else None
    collected = collection_positions(cases or ())
    by_study: dict[str, dict[str, dict[str, Any]]] = {}
    for record in records:
        by_study.setdefault(record["study"], {})[record["variant"]] = record
    studies: list[dict[str, Any]] = []
    for study in sorted(by_study):
        variants = by_study[study]
        references = sorted({r["reference"] for r in variants.values()})
        metrics = sorted({m for r in variants.values() for m in r["metrics"]})
        study_entry: dict[str, Any] = {"study": study, "references": references, "metrics": metrics, "variants": []}
        positions = {
            name: _position(record, collected.get((study, case_variant(name)))) for name, record in variants.items()
        }
        for variant in sorted(variants, key=lambda name: _order_key(name, positions[name])):
            record = variants[variant]
            study_entry["variants"].append(variant_entry(record, positions[variant]))
        studies.append(study_entry)
    # p-values, MDEs and what survives the adjustment for multiple comparisons (inference.py).
    annotate(studies)
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "created": created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "profile": profile,
        "metrics": {name: metric_info[name] for name in sorted(metric_info)},
        "studies": studies,
    }
    if cases is not None:
        report["cases"] = sorted(
            ({k: case.get(k) for k in ("study", "variant", "nodeid", "outcome", "reason")} for case in cases),
            key=lambda c: (c["study"], c["variant"], c["nodeid"] or ""),
        )
        report["selection"] = {
            "paths": sorted(set((selection or {}).get("paths", ()))),
            "files": sorted(set((selection or {}).get("files", ()))),
            "ignored": sorted(set((selection or {}).get("ignored", ()))),
        }
    report["environment"] = environment
    if cache is not None:
        report["cache"] = cache
    if shard is not None:
        report["shard"] = {"index": shard[0], "count": shard[1]}
    return cast("dict[str, Any]", strict_json(report))


def collection_positions(cases: Iterable[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """``(study, variant) -> place`` of each case among its study's cases, in the order
    given (the collection's, as the catalogue lists them), from 0."""
    positions: dict[tuple[str, str], int] = {}
    counts: dict[str, int] = {}
    for case in cases:
        key = cast("tuple[str, str]", (case.get("study"), case.get("variant")))
        if key not in positions:
            positions[key] = counts.get(key[0], 0)
            counts[key[0]] = positions[key] + 1
    return positions


def _position(record: dict[str, Any], collected: int | None) -> int | None:
    own = record.get(POSITION_FIELD)
    if isinstance(own, int) and not isinstance(own, bool) and own >= 0:
        return own
    return collected


def _order_key(variant: str, position: int | None) -> tuple[int, int, str, int]:
    if position is None:
        return (1, 0, variant, 0)
    return (0, position, "", call_number(variant))


def variant_order(report: dict[str, Any]) -> dict[tuple[str, str], int]:
    """``(study, variant) -> index`` of each variant in its study's entry of ``report``: the
    order its tables show them in (collection order in a report that records it)."""
    return {
        (study.get("study"), entry.get("variant")): index
        for study in report.get("studies") or ()
        for index, entry in enumerate(study.get("variants") or ())
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def baseline_problem(report: dict[str, Any]) -> str | None:
    """Why ``report`` cannot serve as a baseline, or None: a value that is not a number, or a
    case that errored or did not finish (its numbers would be missing from the baseline, and
    the gate would never check them)."""
    broken = [c for c in report.get("cases") or () if c.get("outcome") in ("error", "unfinished")]
    if broken:
        first = broken[0]
        return (
            f"{len(broken)} case(s) errored or did not finish, e.g. {first.get('study')} "
            f"{first.get('variant')}: {first.get('reason')}"
        )
    for value in Report.from_json(report).values:
        if not _is_number(value.value):
            return (
                f"{value.study} {value.variant} {value.metric} has value {value.value!r}; a baseline "
                "needs a finite number for every value"
            )
    return None


def merge_cache_stats(summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"hits": 0, "misses": 0, "memory_hits": 0, "corrupted": []}
    for summary in summaries:
        stats = summary.get("cache") or {}
        for key in ("hits", "misses", "memory_hits"):
            merged[key] += stats.get(key, 0)
        merged["corrupted"].extend(stats.get("corrupted", []))
        for name in ("unwritten", "unreadable"):
            if stats.get(name):
                merged.setdefault(name, []).extend(stats[name])
    merged["corrupted"].sort()
    for name in ("unwritten", "unreadable"):
        if name in merged:
            merged[name].sort()
    return merged


def load_report(path: str | Path, *, what: str = "report") -> dict[str, Any]:
    """Read and check a report (or baseline) file; every problem is a ReportError naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise ReportError(f"{what} {path} is a directory; expected a report.json file") from None
    except UnicodeDecodeError as error:
        raise ReportError(f"{what} {path} is not UTF-8 text (byte {error.start}); is it a report.json?") from None
    except OSError as error:
        raise ReportError(f"{what} {path} cannot be read: {error.strerror or error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReportError(
            f"{what} {path} is not valid JSON ({error.msg} at line {error.lineno}); is it truncated?"
        ) from None
    except RecursionError:
        raise ReportError(f"{what} {path} is nested too deeply to be a report.json") from None
    if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT:
        raise ReportError(f"{what} {path} is not a pytest-ablation report (no format {REPORT_FORMAT!r})")
    if data.get("version") not in READABLE_VERSIONS:
        raise ReportError(
            f"{what} {path} has report version {data.get('version')!r}; this "
            f"pytest-ablation reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}; regenerate it with "
            "--ablation-save-baseline"
        )
    problem = schema_problem(data)
    if problem:
        raise ReportError(f"{what} {path} does not match report.json's schema: {problem}")
    try:
        Report.from_json(data)
    except ReportMismatch as error:
        raise ReportError(f"{what} {path} contradicts itself: {error}") from None
    if what == "baseline":
        problem = baseline_problem(data)
        if problem:
            raise ReportError(f"{what} {path}: {problem}")
    return data


def read_report(path: str | Path, *, what: str = "report") -> Report:
    """``load_report``'s document as the typed model every reader works on."""
    return Report.from_json(load_report(path, what=what))
