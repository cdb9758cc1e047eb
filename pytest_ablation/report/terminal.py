"""The tables printed at the end of a run."""

from __future__ import annotations

from tabulate import tabulate


def _signed(x: float) -> str:
    return f"{x:+.4g}"


def _cell(result: dict) -> str:
    if result.get("variant") == result.get("reference"):
        return f"{result['value']:.4g}"
    low, high = result["ci"]
    return f"{result['value']:.4g}  Δ {_signed(result['delta'])} [{_signed(low)}, {_signed(high)}]"


def study_tables(report: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """Per study: a title, headers and rows of variant x metric."""
    tables = []
    for study in report["studies"]:
        metrics = study["metrics"]
        rows = []
        for variant in study["variants"]:
            name = variant["variant"] + ("  (ref)" if variant["is_reference"] else "")
            row = [name]
            for metric in metrics:
                m = variant["metrics"].get(metric)
                row.append("—" if m is None else _cell({**m, "variant": variant["variant"],
                                                        "reference": variant["reference"]}))
            rows.append(row)
        arrows = {"higher": " ↑", "lower": " ↓"}
        headers = ["variant"] + [m + arrows.get(report["metrics"].get(m, {}).get("direction"), "")
                                 for m in metrics]
        first = study["variants"][0] if study["variants"] else {}
        n = next(iter(first.get("metrics", {}).values()), {}).get("n", 0)
        title = (f"{study['study']}: reference {', '.join(study['references'])}; "
                 f"Δ = variant − reference, 95% CI over {n} paired samples")
        tables.append((title, headers, rows))
    return tables


def render_results_table(report: dict, tablefmt: str = "simple") -> str:
    parts = []
    for title, headers, rows in study_tables(report):
        parts.append(title)
        parts.append(tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True))
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def render_gate_table(gate: dict, tablefmt: str = "simple", only_problems: bool = True) -> str:
    rows = [
        [r["study"], r["variant"], r["metric"], r["status"],
         "—" if r.get("baseline") is None else f"{r['baseline']:.4g}",
         "—" if r.get("current") is None else f"{r['current']:.4g}",
         "—" if r.get("change") is None else _signed(r["change"]),
         "—" if r.get("tolerance") is None else f"{r['tolerance']:.4g}"]
        for r in gate["rows"]
        if not only_problems or r["status"] in ("regressed", "missing")
    ]
    headers = ["study", "variant", "metric", "status", "baseline", "current", "change", "tolerance"]
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True) + "\n"
