"""The tables printed at the end of a run."""

from __future__ import annotations

from tabulate import tabulate


def _signed(x: float | None) -> str:
    return "—" if x is None else f"{x:+.4g}"


def _plain(x: float | None) -> str:
    return "—" if x is None else f"{x:.3g}"


def _cell(result: dict) -> str:
    # A value that was not a number is null in report.json: shown as "NaN", never hidden.
    value = "NaN" if result["value"] is None else f"{result['value']:.4g}"
    if result.get("variant") == result.get("reference"):
        return value
    low, high = result["ci"] if result.get("ci") else (None, None)
    mark = " *" if result.get("significant") else ""
    return (f"{value}  Δ {_signed(result['delta'])} "
            f"[{_signed(low)}, {_signed(high)}]{mark}")


FAMILY_TEXT = {"confirmatory": "claim (Holm)", "exploratory": "exploratory (BH)"}


def test_rows(study: dict) -> tuple[list[str], list[list[str]]]:
    """Per non-reference cell of a study: its test, p-values and minimum detectable effect."""
    headers = ["variant", "metric", "Δ", "95% CI", "p", "p adj.", "family", "MDE (80%)"]
    rows = []
    for variant in study["variants"]:
        if variant.get("is_reference") or variant["variant"] == variant.get("reference"):
            continue
        for metric in study["metrics"]:
            m = variant["metrics"].get(metric)
            if m is None:
                continue
            low, high = m.get("ci") or (None, None)
            rows.append([
                variant["variant"], metric, _signed(m.get("delta")),
                f"[{_signed(low)}, {_signed(high)}]", _plain(m.get("p_value")),
                _plain(m.get("p_adjusted")) + (" *" if m.get("significant") else ""),
                FAMILY_TEXT.get(m.get("family"), m.get("family") or "—"),
                _plain(m.get("mde")) if m.get("n", 0) >= 2 else "—",
            ])
    return headers, rows


def _units(first_metric: dict) -> str:
    n = first_metric.get("n", 0)
    samples = first_metric.get("n_samples")
    extra = f" ({samples} samples)" if samples and samples != n else ""
    return f"{n} prompts{extra}"


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
        units = _units(next(iter(first.get("metrics", {}).values()), {}))
        title = (f"{study['study']}: reference {', '.join(study['references'])}; "
                 f"Δ = variant − reference, 95% t-interval over {units}; "
                 "* significant after adjustment")
        tables.append((title, headers, rows))
    return tables


def claim_rows(study: dict, expected: dict | None = None) -> tuple[list[str], list[list[str]]]:
    """Every claim of a study with its test, its verdict in its test and study-wide.

    ``expected`` maps a variant to the reason its claims are expected to fail (a strict
    expected failure on this profile): such a claim shows "no (expected)" and the reason.
    """
    headers = ["variant", "claim", "metric", "margin", "p", "holds", "study-wide (Holm)", "note"]
    rows = []
    expected = expected or {}
    for variant in study["variants"]:
        reason = expected.get(variant["variant"])
        for e in variant.get("expectations") or []:
            notes = []
            if e.get("needs") is not None:
                notes.append(f"needs {e['needs']} prompts")
            elif e.get("underpowered") and not e.get("passed"):
                notes.append(f"underpowered (MDE {_plain(e.get('mde'))})")
            confirmed = e.get("confirmed")
            verdict = "yes" if e.get("passed") else "no"
            if reason is not None and not e.get("passed"):
                verdict = "no (expected)"
                notes.append(f"expected failure: {reason}")
            rows.append([
                variant["variant"], e["claim"], e["metric"], f"{e['margin']:g}",
                _plain(e.get("p_value")), verdict,
                "—" if confirmed is None else ("yes" if confirmed else "no"),
                "; ".join(notes),
            ])
    return headers, rows


def expected_by_variant(report: dict, study: str) -> dict[str, str]:
    from ..outcomes import expected_failures

    return {variant: reason for (name, variant), reason in expected_failures(report).items()
            if name == study}


def render_results_table(report: dict, tablefmt: str = "simple") -> str:
    parts = []
    for study, (title, headers, rows) in zip(report["studies"], study_tables(report)):
        parts.append(title)
        parts.append(tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True))
        parts.append("")
        test_headers, tests = test_rows(study)
        if tests:
            parts.append(tabulate(tests, headers=test_headers, tablefmt=tablefmt, disable_numparse=True))
            parts.append("")
        claim_headers, claims = claim_rows(study, expected_by_variant(report, study["study"]))
        if claims:
            parts.append(tabulate(claims, headers=claim_headers, tablefmt=tablefmt, disable_numparse=True))
            parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def render_gate_table(gate: dict, tablefmt: str = "simple", only_problems: bool = True) -> str:
    from ..gate import FAILING

    rows = [
        [r["study"], r["variant"], r["metric"], r["status"],
         "—" if r.get("baseline") is None else f"{r['baseline']:.4g}",
         "—" if r.get("current") is None else f"{r['current']:.4g}",
         "—" if r.get("change") is None else _signed(r["change"]),
         "—" if r.get("tolerance") is None else f"{r['tolerance']:.4g}"]
        for r in gate["rows"]
        if not only_problems or r["status"] in FAILING
    ]
    headers = ["study", "variant", "metric", "status", "baseline", "current", "change", "tolerance"]
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True) + "\n"
