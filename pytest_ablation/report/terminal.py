"""The tables printed at the end of a run (and by ``pytest-ablation show``).

They are made to fit a terminal of ``WIDTH`` columns: long configurations, claims and notes
wrap within their column, a study's intervals move from its variant x metric table to the
table of tests below it when the cells would not fit, and a study of many metrics is shown
in several tables of a few metrics each. What does not fit a terminal line (an expected
failure's reason) is left to report.md and report.html.
"""

from __future__ import annotations

import textwrap
from typing import Any, cast

from tabulate import tabulate

from ..stats.claims import verdict_of
from .format import (
    column_decimals,
    config_text,
    fixed,
    general,
    is_reference,
    p_text,
    resolution_decimals,
    settings_text,
    signed,
    swept_keys,
    swept_value,
    value_text,
)

__all__ = [
    "WIDTH",
    "claim_rows",
    "claim_text",
    "render_verdicts",
    "verdict_changes",
    "verdict_rows",
    "column_decimals",
    "detail_rows",
    "expected_by_variant",
    "render_gate_table",
    "render_results_table",
    "set_metric_rows",
    "study_table",
    "test_rows",
]

WIDTH = 100
# Looked up with a metric's direction, which a report may not record (None).
ARROWS: dict[str | None, str] = {"higher": " ↑", "lower": " ↓"}
FAMILY_TEXT = {"confirmatory": "claimed (Bonf.)", "exploratory": "exploratory (BH)"}
# The configuration column wraps at this width (and narrower where the table needs it).
CONFIG_WIDTH = 28


# --- the variant x metric table -------------------------------------------------------------


def _decimals(report: dict, study: dict) -> dict[str, int]:
    info = report.get("metrics") or {}
    return {m: column_decimals(study, m, info) for m in study["metrics"]}


def _cell(m: dict | None, reference: bool, decimals: int, intervals: bool) -> str:
    if m is None:
        return "—"
    value = value_text(m.get("value"), decimals)
    if reference:
        return value
    text = f"{value}  Δ {signed(m.get('delta'), decimals)}"
    if intervals:
        low, high = m.get("ci") or (None, None)
        text += f" [{signed(low, decimals)}, {signed(high, decimals)}]"
    return text + (" *" if m.get("significant") else "")


def _variant_label(variant: dict) -> str:
    return variant["variant"] + ("  (ref)" if variant.get("is_reference") else "")


def _config_needed(variants: list[dict], keys: list[str]) -> bool:
    """Whether a configuration column says more than the variant ids: not when every id
    already shows its variant's values (``mu=0.98`` for ``momentum=0.98``)."""
    return bool(keys) and not all(str(swept_value(v, k)) in v["variant"] for v in variants for k in keys)


def study_table(
    report: dict, study: dict, *, metrics: list[str] | None = None, intervals: bool = True, config: bool = True
) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of a study's variant x metric table: per cell the value, the delta
    to the reference and (``intervals``) its interval; the swept configuration (``config``)
    beside the variant."""
    metrics = study["metrics"] if metrics is None else metrics
    variants = study["variants"]
    decimals = _decimals(report, study)
    keys = swept_keys(variants) if config else []
    info = report.get("metrics") or {}
    headers = (
        ["variant"]
        + (["config"] if keys else [])
        + [m + ARROWS.get((info.get(m) or {}).get("direction"), "") for m in metrics]
    )
    rows = []
    for variant in variants:
        row = [_variant_label(variant)] + ([config_text(variant, keys)] if keys else [])
        for metric in metrics:
            row.append(
                _cell((variant.get("metrics") or {}).get(metric), is_reference(variant), decimals[metric], intervals)
            )
        rows.append(row)
    return headers, rows


def _units(study: dict) -> str:
    first: dict[str, Any] = next((m for v in study["variants"] for m in (v.get("metrics") or {}).values()), {})
    n = first.get("n", 0)
    samples = first.get("n_samples")
    extra = f" ({samples} samples)" if samples and samples != n else ""
    return f"{n} {first.get('unit') or 'prompt'}s{extra}"


def study_title(study: dict) -> str:
    return (
        f"{study['study']}: reference {', '.join(study['references'])}; "
        f"Δ = variant − reference, 95% t-interval over {_units(study)}; "
        "* significant after adjustment"
    )


# --- tests and claims -----------------------------------------------------------------------


def test_rows(
    study: dict,
    decimals: dict[str, int] | None = None,
    *,
    delta: bool = True,
    interval: bool = True,
    short: bool = False,
) -> tuple[list[str], list[list[str]]]:
    """Per non-reference cell of a study: its test, p-values and minimum detectable effect
    (``delta``/``interval``: with the delta and its interval; ``short``: the short headers
    of the terminal)."""
    decimals = decimals or {m: column_decimals(study, m) for m in study["metrics"]}
    headers = (
        ["variant", "metric"]
        + (["Δ"] if delta else [])
        + (["95% CI"] if interval else [])
        + ["p 2-sided", "p adj. 2-sided", "family", "MDE" if short else "MDE (80%)"]
    )
    rows = []
    for variant in study["variants"]:
        if is_reference(variant):
            continue
        for metric in study["metrics"]:
            m = (variant.get("metrics") or {}).get(metric)
            if m is None:
                continue
            d = decimals[metric]
            low, high = m.get("ci") or (None, None)
            rows.append(
                [variant["variant"], metric]
                + ([signed(m.get("delta"), d)] if delta else [])
                + ([f"[{signed(low, d)}, {signed(high, d)}]"] if interval else [])
                + [
                    p_text(m.get("p_value")),
                    p_text(m.get("p_adjusted")) + (" *" if m.get("significant") else ""),
                    FAMILY_TEXT.get(m.get("family"), m.get("family") or "—"),
                    fixed(m.get("mde"), d) if m.get("n", 0) >= 2 and m.get("mde") is not None else "—",
                ]
            )
    return headers, rows


def _claim_notes(e: dict, decimals: dict[str, int]) -> list[str]:
    unit = e.get("unit") or "prompt"
    notes = []
    if e.get("needs") is not None:
        notes.append(f"undecidable: needs {e['needs']} {unit}s")
    elif verdict_of(e) == "inconclusive":
        if e.get("would_need"):
            notes.append(f"the observed effect would need about {e['would_need']} {unit}s")
        elif e.get("underpowered"):
            d = decimals.get(cast(str, e.get("metric")))  # every claim names its metric
            mde = e.get("mde_bound") if e.get("mde_bound") is not None else e.get("mde")
            notes.append(f"underpowered (MDE {general(mde) if d is None else fixed(mde, d)})")
    if e.get("skew"):
        notes.append("skewed against the claim")
    return notes


def _verdict(e: dict, reason: str | None) -> str:
    verdict = verdict_of(e)
    if reason is not None and verdict != "supported":
        verdict += " (expected)"
    return verdict


def claim_text(e: dict) -> str:
    """A claim in words: metric, claim, margin (and its statistic when not the mean)."""
    margin = f" {general(e['margin'])}" if e.get("margin") else ""
    median = " (median)" if e.get("statistic") == "median" else ""
    return f"{e['metric']} {e['claim']}{margin}{median}"


def _family(e: dict) -> str:
    size = e.get("family_size")
    if e.get("family") == "declared":
        return f"declared ({size})" if size else "declared"
    return f"exploratory ({size})" if size else "exploratory"


def claim_rows(
    study: dict, expected: dict | None = None, decimals: dict[str, int] | None = None
) -> tuple[list[str], list[list[str]]]:
    """Every claim of a study with its family, tests and verdict.

    ``expected`` maps a variant to the reason its claims are expected to fail (a strict
    expected failure on this profile): such a claim's verdict says "(expected)" and the note
    gives the reason. ``decimals``: of each metric's column, for the MDE.
    """
    headers = ["variant", "claim", "metric", "margin", "family", "p 1-sided", "p adj. 1-sided", "verdict", "note"]
    rows = []
    expected = expected or {}
    for variant in study["variants"]:
        reason = expected.get(variant["variant"])
        for e in variant.get("expectations") or []:
            notes = _claim_notes(e, decimals or {})
            verdict = _verdict(e, reason)
            if verdict.endswith("(expected)"):
                notes.append(f"expected failure: {reason}")
            rows.append(
                [
                    variant["variant"],
                    e["claim"],
                    e["metric"],
                    general(e["margin"]),
                    _family(e),
                    p_text(e.get("p_value")),
                    p_text(_p_decisive(e)),
                    verdict,
                    "; ".join(notes),
                ]
            )
    return headers, rows


def _p_decisive(e: dict):
    """The adjusted p-value behind the verdict: the refuting test's for a refuted claim."""
    if verdict_of(e) == "refuted":
        return e.get("p_refute_adjusted")
    return e.get("p_adjusted")


def _terminal_claim_rows(study: dict, expected: dict, decimals: dict[str, int]) -> tuple[list[str], list[list[str]]]:
    """The claims as the terminal shows them: the metric, claim and margin in one column,
    and an expected failure's reason left to report.md."""
    headers = ["variant", "claim", "family", "p adj.\n1-sided", "verdict", "note"]
    rows = []
    for variant in study["variants"]:
        reason = expected.get(variant["variant"])
        for e in variant.get("expectations") or []:
            rows.append(
                [
                    variant["variant"],
                    claim_text(e),
                    _family(e),
                    p_text(_p_decisive(e)),
                    _verdict(e, reason),
                    "; ".join(_claim_notes(e, decimals)),
                ]
            )
    return headers, rows


def verdict_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """One row per claim of the run, declared claims first: verdict, study, variant, claim
    and the adjusted p-value behind the verdict."""
    from ..results.outcomes import expected_failures

    expected = expected_failures(report)
    rows = []
    for declared in (True, False):
        for study in report["studies"]:
            for variant in study["variants"]:
                reason = expected.get((study["study"], variant["variant"]))
                for e in variant.get("expectations") or []:
                    if (e.get("family") == "declared") != declared:
                        continue
                    rows.append(
                        [
                            _verdict(e, reason),
                            study["study"],
                            variant["variant"],
                            claim_text(e) + ("" if declared else " (exploratory)"),
                            p_text(_p_decisive(e)),
                        ]
                    )
    return ["verdict", "study", "variant", "claim", "p adj. 1-sided"], rows


def _claim_verdicts(report: dict) -> dict[tuple[str, str, str], str]:
    return {
        (study["study"], variant["variant"], claim_text(e)): verdict_of(e)
        for study in report.get("studies") or ()
        for variant in study.get("variants") or ()
        for e in variant.get("expectations") or ()
    }


def verdict_changes(baseline: dict, current: dict) -> list[str]:
    """A line per claim whose verdict differs between two reports."""
    before, after = _claim_verdicts(baseline), _claim_verdicts(current)
    return [
        f"verdict changed: {study} {variant} {claim}: {before[key]} -> {after[key]}"
        for key in after
        if key in before and before[key] != after[key]
        for study, variant, claim in [key]
    ]


def render_verdicts(report: dict, width: int = WIDTH, tablefmt: str = "simple") -> str:
    """The run's claims and their verdicts, one line each under its study's name ("" when
    the run made none)."""
    headers, rows = verdict_rows(report)
    if not rows:
        return ""
    studies = list(dict.fromkeys(row[1] for row in rows))
    parts = []
    for study in studies:
        mine = [[row[0], row[2], row[3], row[4]] for row in rows if row[1] == study]
        parts += [
            f"{study}:",
            fit_table(
                ["verdict", "variant", "claim", "p adj. 1-sided"],
                mine,
                wrap={1: 10, 2: 24},
                width=width,
                tablefmt=tablefmt,
            ),
        ]
    return "\n".join(parts) + "\n"


def expected_by_variant(report: dict, study: str) -> dict[str, str]:
    from ..results.outcomes import expected_failures

    return {variant: reason for (name, variant), reason in expected_failures(report).items() if name == study}


# --- fitting a table to the terminal --------------------------------------------------------


def _wrap(text: str, width: int) -> str:
    # Words stay whole (a value such as "True" is never split), even past the width.
    return "\n".join(textwrap.wrap(text, width, break_long_words=False)) or text


def _render(headers, rows, tablefmt: str) -> str:
    if tablefmt == "simple":
        return simple_table(headers, rows)
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def simple_table(headers: list[str], rows: list[list[str]]) -> str:
    """tabulate's "simple" table without its padding of the headers: each column as wide as
    its widest line, two spaces apart; a cell of several lines spans as many."""
    table = [[str(cell).split("\n") for cell in row] for row in [headers, *rows]]
    widths = [max(len(line) for row in table for line in row[c]) for c in range(len(headers))]
    lines = []

    def emit(row):
        for k in range(max(len(cell) for cell in row)):
            lines.append(
                "  ".join((cell[k] if k < len(cell) else "").ljust(width) for cell, width in zip(row, widths)).rstrip()
            )

    emit(table[0])
    lines.append("  ".join("-" * width for width in widths))
    for row in table[1:]:
        emit(row)
    return "\n".join(lines)


def _widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def fit_table(
    headers: list[str],
    rows: list[list[str]],
    *,
    wrap: dict[int, int] | None = None,
    width: int = WIDTH,
    tablefmt: str = "simple",
) -> str:
    """The table, its ``wrap`` columns (index -> narrowest width) wrapped as much as it
    takes to fit ``width`` columns, when they can: the widest of them is narrowed first."""
    wrap = {c: w for c, w in (wrap or {}).items() if c < len(headers)}
    limits = {
        c: max(len(line) for cell in [headers[c]] + [row[c] for row in rows] for line in str(cell).split("\n"))
        for c in wrap
    }
    while True:
        shaped = [[_wrap(str(cell), limits[c]) if c in limits else cell for c, cell in enumerate(row)] for row in rows]
        text = _render(headers, shaped, tablefmt)
        over = _widest(text) - width
        shrinkable = [c for c in wrap if limits[c] > wrap[c]]
        if over <= 0 or not shrinkable:
            return text
        column = max(shrinkable, key=lambda c: (limits[c], -c))
        next_widest = max((limits[c] for c in shrinkable if c != column), default=0)
        target = max(wrap[column], limits[column] - over, next_widest)
        limits[column] = min(target, limits[column] - 1)


def _fits(text: str, width: int) -> bool:
    return _widest(text) <= width


def _study_tables(report: dict, study: dict, width: int, tablefmt: str) -> tuple[list[str], bool]:
    """The variant x metric table(s) of a study for the terminal, and whether they show the
    intervals."""
    variants = study["variants"]
    config = _config_needed(variants, swept_keys(variants))
    wrap = {1: 16} if config else {}
    for intervals in (True, False):
        headers, rows = study_table(report, study, intervals=intervals, config=config)
        if config:
            rows = [[row[0], _wrap(row[1], CONFIG_WIDTH), *row[2:]] for row in rows]
        text = fit_table(headers, rows, wrap=wrap, width=width, tablefmt=tablefmt)
        if _fits(text, width):
            return [text], intervals
    # Too many metrics for one table: a few metrics per table, each with the variants.
    tables: list[list[str]] = []
    group: list[str] = []
    for metric in study["metrics"]:
        trial = group + [metric]
        first = config and not tables  # the configuration goes with the first table only
        headers, rows = study_table(report, study, metrics=trial, intervals=False, config=first)
        trial_wrap = wrap if first else {}
        if group and not _fits(fit_table(headers, rows, wrap=trial_wrap, width=width, tablefmt=tablefmt), width):
            tables.append(group)
            group = [metric]
        else:
            group = trial
    tables.append(group)
    texts = []
    for index, metrics in enumerate(tables):
        headers, rows = study_table(report, study, metrics=metrics, intervals=False, config=config and index == 0)
        texts.append(fit_table(headers, rows, wrap=wrap if index == 0 else {}, width=width, tablefmt=tablefmt))
    return texts, False


def _lines(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width, subsequent_indent="  ", break_on_hyphens=False))


def render_results_table(report: dict, tablefmt: str = "simple", width: int = WIDTH) -> str:
    """Per study: its title and settings, the variant x metric table, the tests of its
    cells and its claims, each at most ``width`` columns wide where the names allow."""
    parts = []
    for study in report["studies"]:
        parts.append(_lines(study_title(study), width))
        settings = settings_text(study)
        if settings:
            parts.append(_lines(f"settings: {settings}", width))
        tables, intervals = _study_tables(report, study, width, tablefmt)
        for table in tables:
            parts += [table, ""]
        decimals = _decimals(report, study)
        test_headers, tests = test_rows(study, decimals, delta=False, interval=not intervals, short=True)
        if tests:
            wrap = {
                test_headers.index(name): narrowest
                for name, narrowest in (("variant", 10), ("metric", 16), ("95% CI", 11), ("family", 11))
                if name in test_headers
            }
            parts += [fit_table(test_headers, tests, wrap=wrap, width=width, tablefmt=tablefmt), ""]
        detail_headers, details = detail_rows(study)
        if details:
            parts += [fit_table(detail_headers, details, width=width, tablefmt=tablefmt), ""]
        set_headers, set_rows, warnings = set_metric_rows(report, study["study"])
        if set_rows:
            parts += [fit_table(set_headers, set_rows, wrap={0: 10, 5: 24}, width=width, tablefmt=tablefmt)]
            parts += [_lines(f"warning: {w}", width) for w in warnings]
            parts.append("")
        claim_headers, claims = _terminal_claim_rows(study, expected_by_variant(report, study["study"]), decimals)
        if claims:
            parts.append(fit_table(claim_headers, claims, wrap={0: 10, 1: 21, 5: 16}, width=width, tablefmt=tablefmt))
            if any(row[4].endswith("(expected)") for row in claims):
                parts.append(
                    _lines("(expected): a strict expected failure on this profile; its reason is in report.md", width)
                )
            parts.append("")
    return "\n".join(parts).rstrip() + "\n"


# --- what the generator reported (variant details) ----------------------------------------


def detail_rows(study: dict) -> tuple[list[str], list[list[str]]]:
    """What the generator reported about each variant's samples (its ``details``, e.g. the
    initial noise a sampler achieved): one row per variant, the mean over its samples per
    name. No rows when no variant has details."""
    variants = [v for v in study["variants"] if v.get("details")]
    if not variants:
        return [], []
    names = sorted({name for v in variants for name in v["details"]})
    rows = []
    for variant in study["variants"]:
        details = variant.get("details") or {}
        rows.append(
            [_variant_label(variant)] + [f"{details[name]['value']:.4g}" if name in details else "—" for name in names]
        )
    return ["variant (generator details, mean)"] + names, rows


# --- set-level metrics (FVD) ---------------------------------------------------------------


def set_metric_rows(report: dict, study: str) -> tuple[list[str], list[list[str]], list[str]]:
    """The set-level metrics (FVD) of a study, one row per variant and metric: its value
    against the reference set, the bootstrap interval, the set sizes and the reference set;
    and the distinct warnings of its rows (a row with one says "yes" in its column)."""
    from ..results.model import Report

    # In the study's variant order (collection order), each variant's metrics by name.
    entries = [value for value in Report.from_json(report).set_values if value.study == study]
    headers = ["variant", "metric", "value", "95% CI", "n (variant / ref)", "reference set", "warning"]
    rows, warnings = [], []
    for r in entries:
        if r.is_reference:
            interval = "reference set"
        elif r.low is None or r.high is None:
            interval = "—"
        else:
            interval = f"[{fixed(r.low, 2)}, {fixed(r.high, 2)}]"
        arrow = ARROWS.get(r.direction, "")
        rows.append(
            [
                r.variant,
                f"{r.metric}{arrow}",
                fixed(r.value, 2),
                interval,
                f"{r.n_variant} / {r.n_reference}",
                str(r.reference),
                "yes" if r.warning else "",
            ]
        )
        if r.warning and r.warning not in warnings:
            warnings.append(r.warning)
    return headers, rows, warnings


# --- the gate -------------------------------------------------------------------------------


def render_gate_table(
    gate: dict, tablefmt: str = "simple", only_problems: bool = True, order: dict | None = None, width: int = WIDTH
) -> str:
    """The gate's rows (only the failing ones unless ``only_problems`` is false), each
    metric's numbers with the decimals its tolerance asks for. ``order`` (``(study,
    variant) -> index``, e.g. ``results.report_json.variant_order`` of the current report) lists a
    study's variants in that order rather than by name."""
    from ..results.gate import FAILING

    shown = [r for r in gate["rows"] if not only_problems or r["status"] in FAILING]
    if order:
        shown.sort(key=lambda r: (r["study"], order.get((r["study"], r["variant"]), len(order)), r["metric"]))
    rows = []
    for r in shown:
        decimals = resolution_decimals(r.get("tolerance"))

        def number(x, sign=False, decimals=decimals):
            if x is None:
                return "—"
            if decimals is None:
                return ("+" if sign and x >= 0 else "") + general(x)
            return signed(x, decimals) if sign else fixed(x, decimals)

        rows.append(
            [
                r["study"],
                r["variant"],
                r["metric"],
                r["status"],
                number(r.get("baseline")),
                number(r.get("current")),
                number(r.get("change"), sign=True),
                "—" if r.get("tolerance") is None else general(r["tolerance"]),
            ]
        )
    headers = ["study", "variant", "metric", "status", "baseline", "current", "change", "tol."]
    return fit_table(headers, rows, wrap={0: 17, 1: 10, 2: 14}, width=width, tablefmt=tablefmt) + "\n"


def render_differences(gate: dict) -> str:
    """The configuration differences a failed gate found between the baseline and the
    report (``gate.configuration_differences``), one line each; "" when none."""
    differences = gate.get("differences") or []
    if not differences:
        return ""
    lines = ["the baseline and this report were made differently:"]
    lines += [f"  {line}" for line in differences]
    return "\n".join(lines) + "\n"
