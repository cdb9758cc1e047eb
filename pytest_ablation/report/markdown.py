"""report.md: the same numbers as the terminal, readable on a code-hosting site."""

from __future__ import annotations

from ..results.report_json import variant_order
from .format import column_decimals, settings_text
from .terminal import (
    claim_rows,
    detail_rows,
    expected_by_variant,
    render_gate_table,
    set_metric_rows,
    study_table,
    study_title,
    test_rows,
    verdict_rows,
)


def render_markdown(report: dict) -> str:
    lines = ["# Ablation report", ""]
    profile = report.get("profile", {})
    env = report.get("environment", {})
    git = env.get("git") or {}
    lines += [
        f"- profile: `{profile.get('name', '?')}`"
        + (f": {profile['description']}" if profile.get("description") else ""),
        f"- created: {report.get('created', '?')}",
        f"- commit: `{git.get('commit', 'unknown')}`" + (" (uncommitted changes)" if git.get("dirty") else ""),
        f"- pytest-ablation {env.get('packages', {}).get('pytest-ablation', '?')}, "
        f"torch {env.get('packages', {}).get('torch', '?')}, python {env.get('python', '?')}",
        "",
    ]
    verdict_headers, verdicts = verdict_rows(report)
    if verdicts:
        lines += ["## Verdicts", "", _github_table(verdict_headers, verdicts), ""]
    info = report.get("metrics") or {}
    for study in report["studies"]:
        lines += [f"## {study['study']}", "", study_title(study), ""]
        headers, rows = study_table(report, study)
        lines.append(_github_table(headers, rows))
        settings = settings_text(study)
        if settings:
            lines += ["", f"Settings: {settings}."]
        decimals = {m: column_decimals(study, m, info) for m in study["metrics"]}
        test_headers, tests = test_rows(study, decimals)
        if tests:
            lines += ["", _github_table(test_headers, tests)]
        detail_headers, details = detail_rows(study)
        if details:
            lines += ["", _github_table(detail_headers, details)]
        set_headers, set_rows, warnings = set_metric_rows(report, study["study"])
        if set_rows:
            lines += ["", _github_table(set_headers, set_rows)]
            lines += [f"\n> **Warning:** {w}" for w in warnings]
        claim_headers, claims = claim_rows(study, expected_by_variant(report, study["study"]), decimals)
        if claims:
            lines += ["", _github_table(claim_headers, claims)]
        lines.append("")
    if report.get("metrics"):
        lines += ["## Metrics", ""]
        for name, info in report["metrics"].items():
            lines.append(f"- **{name}** ({info.get('direction')}): {info.get('definition')} — {info.get('source')}")
        lines.append("")
    gate = report.get("gate")
    if gate is not None:
        lines += ["## Gate", "", f"Baseline `{gate['baseline']}`: {gate['summary']}", ""]
        if gate["failed"]:
            lines.append(_pipe(render_gate_table(gate, order=variant_order(report))))
        lines.append("")
    workers = env.get("workers") or {}
    if workers:
        lines += ["## Workers", "", "| worker | device | model loads |", "|---|---|---|"]
        for name, info in workers.items():
            loads = ", ".join(f"{k}×{v}" for k, v in sorted((info.get("loads") or {}).items())) or "none"
            lines.append(f"| {name} | {info.get('device_text', info.get('device', '?'))} | {loads} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _github_table(headers, rows) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _pipe(text: str) -> str:
    return "```\n" + text.rstrip() + "\n```"
