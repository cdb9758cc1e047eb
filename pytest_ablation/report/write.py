"""Where the report files go: a stable latest location and one folder per run."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from pathlib import Path

from ..files import write_json_atomic, write_text_atomic
from .markdown import render_markdown


def write_reports(report: dict, report_dir: Path) -> dict[str, Path]:
    """Write report.json and report.md to ``report_dir`` and to ``report_dir/runs/<run>/``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = Path(report_dir) / "runs" / f"{stamp}-{secrets.token_hex(3)}"
    markdown = render_markdown(report)
    for folder in (run_dir, Path(report_dir)):
        write_json_atomic(folder / "report.json", report)
        write_text_atomic(folder / "report.md", markdown)
    return {
        "json": Path(report_dir) / "report.json",
        "markdown": Path(report_dir) / "report.md",
        "run_dir": run_dir,
    }

