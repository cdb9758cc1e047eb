"""Where the report files go: a stable latest location and one folder per run."""

from __future__ import annotations

import re
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
        if folder != report_dir:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / RUN_MARK).write_text("a run copy of pytest-ablation's report; pruned by --ablation-keep-runs\n")
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


# A run copy's folder: its name (``run_name``) and this file in it. Only folders with both
# are ever pruned: a user's own folders under ``runs/`` are not the plugin's to delete.
RUN_MARK = ".pytest-ablation-run"
_RUN_NAME = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")


def run_name(now: datetime) -> str:
    """``<UTC time>-<id>``: the id's first five hex digits are the microseconds, so that the
    names sort as the runs were made even within one second; the last one is random."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{now.microsecond:05x}{secrets.token_hex(1)[0]}"


def prune_runs(runs_dir: Path, keep: int) -> list[Path]:
    """Remove all but the ``keep`` newest of the plugin's own run copies (named by
    ``run_name``, holding ``RUN_MARK``, not links); nothing else under ``runs_dir``."""
    import shutil

    runs = sorted((p for p in runs_dir.iterdir() if _is_run_copy(p)), key=lambda p: p.name, reverse=True)
    removed = runs[keep:]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def _is_run_copy(path: Path) -> bool:
    return (
        not path.is_symlink()
        and path.is_dir()
        and _RUN_NAME.fullmatch(path.name) is not None
        and (path / RUN_MARK).is_file()
    )
