"""Turning recorded results into report.json, report.md and the terminal table."""

from .build import REPORT_FORMAT, REPORT_VERSION, ReportError, build_report, load_report, results_of
from .markdown import render_markdown
from .terminal import render_results_table
from .write import write_reports

__all__ = [
    "REPORT_FORMAT",
    "REPORT_VERSION",
    "ReportError",
    "build_report",
    "load_report",
    "render_markdown",
    "render_results_table",
    "results_of",
    "write_reports",
]
