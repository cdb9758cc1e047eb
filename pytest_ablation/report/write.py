"""Where the report files go: a stable latest location and one folder per run."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from pathlib import Path

from ..files import write_json_atomic, write_text_atomic
from .markdown import render_markdown


def write_reports(report: dict, report_dir: Path, *, keep_runs: int = 0) -> dict[str, Path]:
    """Write report.json, report.md and report.html to ``report_dir`` and, when ``keep_runs``
    is above 0, to ``report_dir/runs/<run>/`` too, then remove all but the newest
    ``keep_runs`` run folders (a copy weighs a few MB: its pictures are embedded).

    report.html embeds its pictures, so the copy kept per run stays whole after the next
    run rewrites the previews under ``report_dir/media/``.
    """
    from .html import render_html

    report_dir = Path(report_dir)
    markdown = render_markdown(report)
    page = render_html(report, media_root=report_dir)
    folders = [report_dir]
    paths: dict[str, Path] = {}
    if keep_runs > 0:
        paths["run_dir"] = report_dir / "runs" / run_name(datetime.now(timezone.utc))
        folders.insert(0, paths["run_dir"])
    for folder in folders:
        write_json_atomic(folder / "report.json", report)
        write_text_atomic(folder / "report.md", markdown)
        write_text_atomic(folder / "report.html", page)
    if keep_runs > 0:
        prune_runs(report_dir / "runs", keep_runs)
    paths.update(
        json=report_dir / "report.json",
        markdown=report_dir / "report.md",
        html=report_dir / "report.html",
    )
    return paths


def run_name(now: datetime) -> str:
    """``<UTC time>-<id>``: the id's first five hex digits are the microseconds, so that the
    names sort as the runs were made even within one second; the last one is random."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{now.microsecond:05x}{secrets.token_hex(1)[0]}"


def prune_runs(runs_dir: Path, keep: int) -> list[Path]:
    """Remove all but the ``keep`` newest run folders (their names start with the UTC time)."""
    import shutil

    runs = sorted((p for p in runs_dir.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True)
    removed = runs[keep:]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed
