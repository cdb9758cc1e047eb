"""A report as the rows, numbers, settings and files an experiment tracker logs.

Shared by every tracker, so that W&B and MLflow log the same things under the same names:
the modules beside this one only hand them to their package.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from pathlib import Path
from typing import Any
from collections.abc import Iterable

from ...stats.claims import VERDICTS, verdict_of

# The numbers of each (study, variant, metric), as metrics: what a tracker charts and compares
# across runs. The full row (n, spread, MDE, adjusted p-value...) is in the results table.
METRIC_FIELDS = ("value", "reference_value", "delta", "ci_low", "ci_high", "p_value")

RESULT_COLUMNS = (
    "study",
    "variant",
    "reference",
    "metric",
    "direction",
    "value",
    "reference_value",
    "delta",
    "ci_low",
    "ci_high",
    "confidence",
    "n",
    "p_value",
    "p_adjusted",
    "family",
    "significant",
)
CLAIM_COLUMNS = (
    "study",
    "variant",
    "metric",
    "claim",
    "margin",
    "verdict",
    "passed",
    "expected_failure",
    "family",
    "p_value",
    "p_adjusted",
    "n",
)
GATE_COLUMNS = ("study", "variant", "metric", "status", "baseline", "current", "tolerance", "direction", "reason")
CASE_COLUMNS = ("study", "variant", "nodeid", "outcome", "reason")

# The report's own files, by their names in the report folder and in the tracker's artifacts.
REPORT_FILES = ("report.json", "report.md", "report.html")


def _number(value: Any) -> float | None:
    """A finite number as a float; anything else (None, a bool, NaN) as None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def result_rows(report: dict) -> list[dict]:
    from ...results.model import Report

    rows = []
    for comparison in Report.from_json(report).comparisons:
        result = comparison.row()
        low, high = (list(result.get("ci") or ()) + [None, None])[:2]
        row = {column: result.get(column) for column in RESULT_COLUMNS}
        row.update(ci_low=low, ci_high=high)
        rows.append(row)
    return rows


def claim_rows(report: dict) -> list[dict]:
    """Every claim with its verdict; a strict expected failure's are marked with its reason,
    as the terminal marks them, so that a tracker does not show them as the run's failures."""
    from ...results.outcomes import expected_failures

    expected = expected_failures(report)
    rows = []
    for study in report.get("studies") or ():
        for variant in study.get("variants") or ():
            for claim in variant.get("expectations") or ():
                row = {column: claim.get(column) for column in CLAIM_COLUMNS}
                row.update(
                    study=study.get("study"),
                    variant=variant.get("variant"),
                    verdict=verdict_of(claim),
                    expected_failure=expected.get((study.get("study"), variant.get("variant"))),
                )
                rows.append(row)
    return rows


def gate_rows(report: dict) -> list[dict]:
    gate = report.get("gate") or {}
    return [{column: row.get(column) for column in GATE_COLUMNS} for row in gate.get("rows") or ()]


def case_rows(report: dict) -> list[dict]:
    return [{column: case.get(column) for column in CASE_COLUMNS} for case in report.get("cases") or ()]


def tables(report: dict) -> dict[str, tuple[tuple[str, ...], list[dict]]]:
    """``name -> (columns, rows)`` of every table the run has; ``gate`` only with a gate."""
    found = {
        "results": (RESULT_COLUMNS, result_rows(report)),
        "claims": (CLAIM_COLUMNS, claim_rows(report)),
        "cases": (CASE_COLUMNS, case_rows(report)),
    }
    if report.get("gate") is not None:
        found["gate"] = (GATE_COLUMNS, gate_rows(report))
    return found


def metric_values(report: dict) -> dict[tuple[str, str, str, str], float]:
    """``(study, variant, metric, field) -> number`` for each field of ``METRIC_FIELDS`` that
    is a finite number (a reference's p-value is null: there is nothing to log for it)."""
    values = {}
    for row in result_rows(report):
        for field in METRIC_FIELDS:
            number = _number(row.get(field))
            if number is not None:
                values[row["study"], row["variant"], row["metric"], field] = number
    return values


def run_numbers(report: dict) -> dict[str, float]:
    """Counts over the whole run: claims held and not, and the gate's verdict and counts."""
    claims = claim_rows(report)
    numbers = {f"claims/{verdict}": float(sum(1 for c in claims if c["verdict"] == verdict)) for verdict in VERDICTS}
    numbers.update(
        {
            "claims/not_supported_unexpected": float(
                sum(1 for c in claims if c["verdict"] != "supported" and not c["expected_failure"])
            ),
            "claims/not_supported_expected": float(
                sum(1 for c in claims if c["verdict"] != "supported" and c["expected_failure"])
            ),
        }
    )
    gate = report.get("gate")
    if gate is not None:
        numbers["gate/failed"] = float(bool(gate.get("failed")))
        for status, count in sorted((gate.get("counts") or {}).items()):
            numbers[f"gate/{status.replace(' ', '_')}"] = float(count)
    return numbers


def gate_outcome(report: dict) -> str:
    """``passed``, ``failed`` or ``none`` (no ``--ablation-gate``)."""
    gate = report.get("gate")
    if gate is None:
        return "none"
    return "failed" if gate.get("failed") else "passed"


def run_config(report: dict, options) -> dict:
    """What the run was made with: the profile (its models and settings), the options that
    change what runs or how it is judged, the selection and the software."""
    environment = report.get("environment") or {}
    return {
        "profile": report.get("profile") or {},
        "options": {
            "devices": options.devices,
            "cache": "off" if options.no_cache else "on",
            "gate": str(options.gate) if options.gate is not None else None,
            "shard": f"{options.shard[0]}/{options.shard[1]}" if options.shard else None,
            "tolerances": dict(options.tolerances),
        },
        "selection": (report.get("selection") or {}).get("paths", []),
        "environment": {
            "python": environment.get("python"),
            "platform": environment.get("platform"),
            "packages": environment.get("packages") or {},
            "git": environment.get("git"),
        },
    }


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts as ``a.b.c -> text``: lists and scalars as JSON, so a parameter reads as
    it does in report.json (a string stays unquoted)."""
    if isinstance(value, dict):
        flat: dict[str, str] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, str):
        return {prefix: value}
    return {prefix: json.dumps(value, sort_keys=True)}


# The longest key the trackers take (MLflow's limit; W&B's is larger).
MAX_KEY_LENGTH = 250


def safe_key(parts: Iterable[str], allowed: str) -> str:
    """``parts`` joined by ``/``, each made of ``allowed`` characters only (a regex class).

    A part that had to change gets a short hash of the original, as preview file names do,
    so that two variants that clean up alike ("s=0.5", "s<0.5") keep apart; a key over
    ``MAX_KEY_LENGTH`` is cut and ends with a hash of the whole.
    """
    cleaned = []
    for part in parts:
        part = str(part)
        fixed = re.sub(f"[^{allowed}]", "_", part)
        # "", "." and ".." would read as paths to another name where keys are paths (MLflow).
        if fixed != part or fixed in ("", ".", ".."):
            fixed += "-" + hashlib.sha256(part.encode("utf-8")).hexdigest()[:6]
        cleaned.append(fixed)
    key = "/".join(cleaned)
    if len(key) > MAX_KEY_LENGTH:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
        key = f"{key[: MAX_KEY_LENGTH - 9].rstrip('/.')}-{digest}"
    return key


def report_files(report_dir: Path) -> list[tuple[Path, str]]:
    """``(file, name in the artifacts)`` of report.json, report.md and report.html."""
    return [(report_dir / name, name) for name in REPORT_FILES if (report_dir / name).is_file()]


def previews(report: dict, report_dir: Path) -> list[tuple[str, str, str, Path]]:
    """``(study, variant, kind, file)`` of the previews this report shows (``animation``: a
    GIF, ``strip``: a PNG of frames). Only those: the media folder may still hold an older
    run's previews of variants that this run did not make."""
    found = []
    for study in report.get("studies") or ():
        for variant in study.get("variants") or ():
            for kind, relative in sorted((variant.get("media") or {}).items()):
                path = report_dir / relative
                if isinstance(relative, str) and path.is_file():
                    found.append((study.get("study"), variant.get("variant"), kind, path))
    return found


def artifact_files(report: dict, report_dir: Path) -> list[tuple[Path, str]]:
    """The report files and every preview, with their paths relative to the report folder
    (``media/<study>/<variant>.gif``): the artifacts keep the report folder's layout."""
    files = report_files(report_dir)
    for *_, path in previews(report, report_dir):
        files.append((path, path.relative_to(report_dir).as_posix()))
    return files


def to_csv(columns: Iterable[str], rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return out.getvalue()


def run_name(report: dict) -> str:
    """``<profile> <created>`` (and the shard): what a tracker's run list shows."""
    profile = (report.get("profile") or {}).get("name") or "run"
    name = f"{profile} {report.get('created') or ''}".strip()
    shard = report.get("shard")
    if shard:
        name += f" shard {shard['index']}/{shard['count']}"
    return name


def project_name(rootdir: Path, forbidden: str = "", fallback: str = "pytest-ablation") -> str:
    """The default project (W&B) or experiment (MLflow) name: the project folder's name,
    with ``forbidden`` characters replaced."""
    name = "".join("-" if char in forbidden else char for char in Path(rootdir).name).strip()
    return name or fallback
