"""The report as data: one JSON document, deterministically ordered."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

REPORT_FORMAT = "pytest-ablation-report"
REPORT_VERSION = 1

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


# What a study's variant entry holds: one ``ablation.run`` record without its study.
VARIANT_FIELDS = (
    "variant", "reference", "is_reference", "nodeid", "generator", "generator_identity",
    "config", "reference_config", "settings", "samples", "expectations", "metrics",
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


def git_commit(folder: Path) -> dict | None:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder, capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def environment(rootdir: Path, workers: dict[str, dict]) -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "git": git_commit(rootdir),
        "workers": {name: workers[name] for name in sorted(workers)},
    }


def build_report(
    records: Iterable[dict],
    *,
    profile: dict,
    environment: dict,
    metric_info: dict[str, dict],
    cache: dict | None = None,
    created: str | None = None,
    shard: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Assemble the report from the variant records the tests produced.

    Everything that depends on the run's scheduling (which worker, in which order) lives
    under ``environment`` and ``cache``; ``studies`` and ``results`` are ordered by
    (study, variant, metric) so that the same run on 1 or N workers gives the same document
    there.
    """
    by_study: dict[str, dict[str, dict]] = {}
    for record in records:
        by_study.setdefault(record["study"], {})[record["variant"]] = record
    studies = []
    results = []
    for study in sorted(by_study):
        variants = by_study[study]
        references = sorted({r["reference"] for r in variants.values()})
        metrics = sorted({m for r in variants.values() for m in r["metrics"]})
        study_entry = {"study": study, "references": references, "metrics": metrics, "variants": []}
        for variant in sorted(variants):
            record = variants[variant]
            entry = {k: record[k] for k in VARIANT_FIELDS if k != "metrics"}
            entry["metrics"] = {m: record["metrics"][m] for m in sorted(record["metrics"])}
            for optional in ("media", "videos"):
                if optional in record:
                    entry[optional] = record[optional]
            study_entry["variants"].append(entry)
            for metric in sorted(record["metrics"]):
                m = record["metrics"][metric]
                results.append(
                    {
                        "study": study,
                        "variant": variant,
                        "reference": record["reference"],
                        "metric": metric,
                        "direction": m["direction"],
                        "value": m["value"],
                        "reference_value": m["reference_value"],
                        "delta": m["delta"],
                        "ci": m["ci"],
                        "n": m["n"],
                        "confidence": m["confidence"],
                    }
                )
        studies.append(study_entry)
    report = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "created": created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "profile": profile,
        "metrics": {name: metric_info[name] for name in sorted(metric_info)},
        "studies": studies,
        "results": results,
        "environment": environment,
    }
    if cache is not None:
        report["cache"] = cache
    if shard is not None:
        report["shard"] = {"index": shard[0], "count": shard[1]}
    return report


def merge_cache_stats(summaries) -> dict:
    merged = {"hits": 0, "misses": 0, "memory_hits": 0, "corrupted": []}
    for summary in summaries:
        stats = summary.get("cache") or {}
        for key in ("hits", "misses", "memory_hits"):
            merged[key] += stats.get(key, 0)
        merged["corrupted"].extend(stats.get("corrupted", []))
    merged["corrupted"].sort()
    return merged


def results_of(report: dict) -> dict[tuple[str, str, str], dict]:
    return {(r["study"], r["variant"], r["metric"]): r for r in report["results"]}


def load_report(path: str | Path, *, what: str = "report") -> dict:
    """Read and check a report (or baseline) file; every problem is a ReportError naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{what} {path} does not exist") from None
    except OSError as error:
        raise ReportError(f"{what} {path} cannot be read: {error.strerror or error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReportError(f"{what} {path} is not valid JSON ({error.msg} at line {error.lineno}); "
                          "is it truncated?") from None
    if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT:
        raise ReportError(f"{what} {path} is not a pytest-ablation report (no format "
                          f"{REPORT_FORMAT!r})")
    if data.get("version") != REPORT_VERSION:
        raise ReportError(f"{what} {path} has report version {data.get('version')!r}; this "
                          f"pytest-ablation reads version {REPORT_VERSION}; regenerate it with "
                          "--ablation-save-baseline")
    results = data.get("results")
    required = ("study", "variant", "metric", "direction", "value")
    if not isinstance(results, list) or not all(
        isinstance(r, dict) and all(k in r for k in required) for r in results
    ):
        raise ReportError(f"{what} {path} has no valid 'results' list (each entry needs "
                          f"{', '.join(required)})")
    return data
