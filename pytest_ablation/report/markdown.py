"""report.md: the same numbers as the terminal, readable on a code-hosting site."""

from __future__ import annotations

from .terminal import claim_rows, expected_by_variant, render_gate_table, study_tables, test_rows


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
    tables = {title: (headers, rows) for title, headers, rows in study_tables(report)}
    for study, (title, (headers, rows)) in zip(report["studies"], tables.items()):
        lines += [f"## {study['study']}", "", title, ""]
        lines.append(_github_table(headers, rows))
        variant = study["variants"][0] if study["variants"] else None
        if variant:
            settings = variant["settings"]
            lines += [
                "",
                f"Settings: {settings.get('frames')} frames, {settings.get('steps')} steps, "
                f"{settings.get('width')}x{settings.get('height')}, guidance "
                f"{settings.get('guidance_scale')}, {settings.get('fps')} fps; "
                f"{len(settings.get('prompts', []))} prompt(s) x {settings.get('seeds')} seed(s).",
            ]
        test_headers, tests = test_rows(study)
        if tests:
            lines += ["", _github_table(test_headers, tests)]
        claim_headers, claims = claim_rows(study, expected_by_variant(report, study["study"]))
        if claims:
            lines += ["", _github_table(claim_headers, claims)]
        lines.append("")
    if report.get("metrics"):
        lines += ["## Metrics", ""]
        for name, info in report["metrics"].items():
            lines.append(f"- **{name}** ({info.get('direction')}): {info.get('definition')} "
                         f"— {info.get('source')}")
        lines.append("")
    gate = report.get("gate")
    if gate is not None:
        lines += ["## Gate", "", f"Baseline `{gate['baseline']}`: {gate['summary']}", ""]
        if gate["failed"]:
            lines.append(_pipe(render_gate_table(gate)))
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
