"""The tables and plots as a reader sees them: their width, their numbers, their order."""

from __future__ import annotations

import copy
import re

import pytest

from pytest_ablation.results.report_json import build_report
from pytest_ablation.report.terminal import render_results_table
from pytest_ablation.report.html import _Plotter, render_html
from pytest_ablation.report.markdown import render_markdown
from pytest_ablation.report.terminal import column_decimals, render_gate_table

from .conftest import synthetic_report
from report_files import result_rows

LONG_REASON = (
    "random weights: the toy model never learnt anything about frame positions, so no "
    "embedding makes its noise-like videos more consistent; the variants differ by "
    "about 1e-4, in no particular direction, and with two prompts no claim can hold"
)


def with_claims(report: dict) -> dict:
    """The synthetic report with claims, one of them an expected failure with a long reason,
    and cases recording that expected failure."""
    report = copy.deepcopy(report)
    cases = []
    for study in report["studies"]:
        for variant in study["variants"]:
            cases.append(
                {
                    "study": study["study"],
                    "variant": variant["variant"],
                    "nodeid": variant["nodeid"],
                    "outcome": "passed",
                    "reason": None,
                }
            )
    tma = report["studies"][1]
    mu0 = next(v for v in tma["variants"] if v["variant"] == "mu=0.0")
    mu0["expectations"] = [
        {
            "metric": "clip_score",
            "claim": "not_above_reference",
            "margin": 1.0,
            "passed": False,
            "verdict": "inconclusive",
            "statistic": "mean",
            "family": "declared",
            "family_size": 2,
            "p_value": 0.25,
            "p_adjusted": 0.5,
            "p_refute": 0.75,
            "p_refute_adjusted": 1.0,
            "needs": 7,
            "underpowered": True,
            "mde": None,
        },
        {
            "metric": "dynamic_degree",
            "claim": "below_reference",
            "margin": 0.0,
            "passed": False,
            "verdict": "inconclusive",
            "statistic": "mean",
            "family": "declared",
            "family_size": 2,
            "p_value": 0.75,
            "p_adjusted": 1.0,
            "p_refute": 0.25,
            "p_refute_adjusted": 0.5,
            "needs": 7,
            "underpowered": True,
            "mde": None,
        },
    ]
    case = next(c for c in cases if c["variant"] == "mu=0.0")
    case.update(outcome="xfailed", reason=f"on profile 'tiny': {LONG_REASON}")
    report["cases"] = cases
    return report


def widest(text: str) -> str:
    return max(text.splitlines(), key=len)


# --- width --------------------------------------------------------------------------------


def test_terminal_tables_fit_100_columns():
    report = with_claims(synthetic_report())
    # A long configuration string in every variant of a study.
    for variant in report["studies"][0]["variants"]:
        variant["config"]["recipe"] = f"{variant['variant']}: " + "lr=1e-4, steps=200, batch=4, " * 3
    text = render_results_table(report)
    assert len(widest(text)) <= 100, widest(text)


def test_many_metrics_still_fit_and_every_metric_is_shown():
    report = synthetic_report()
    study = report["studies"][0]  # exvideo-position: three metrics
    for variant in study["variants"]:
        for name in ("motion_smoothness", "condition_consistency", "video_quality"):
            variant["metrics"][name] = copy.deepcopy(variant["metrics"]["temporal_flickering"])
    study["metrics"] = sorted(set(study["metrics"]) | {"motion_smoothness", "condition_consistency", "video_quality"})
    text = render_results_table(report)
    assert len(widest(text)) <= 100, widest(text)
    for metric in study["metrics"]:
        assert metric in text


def test_the_long_text_is_in_report_md_in_full():
    report = with_claims(synthetic_report())
    assert LONG_REASON in render_markdown(report)
    assert LONG_REASON not in render_results_table(report).replace("\n", " ")


# --- numbers ------------------------------------------------------------------------------


def test_decimals_come_from_the_metrics_resolution():
    report = synthetic_report()
    tma = report["studies"][1]
    # Hand-made intervals of +-0.002 (clip_score tolerance 0.5): two significant digits of it.
    assert column_decimals(tma, "clip_score", report["metrics"]) == 4
    for variant in tma["variants"]:
        m = variant["metrics"]["clip_score"]
        m["ci"] = [m["delta"] - 3.0, m["delta"] + 3.0]
    # A wide interval: the tolerance (0.5) still asks for two decimals.
    assert column_decimals(tma, "clip_score", report["metrics"]) == 2


def test_tiny_deltas_beside_ordinary_values_are_not_scientific():
    report = synthetic_report()
    tma = report["studies"][1]
    for variant in tma["variants"]:
        m = variant["metrics"]["clip_score"]
        m["value"] = 0.99776 + m["delta"] * 1e-4
        m["reference_value"] = 0.99776
        m["delta"] *= 1e-4
        m["ci"] = [m["delta"] - 2e-4, m["delta"] + 2e-4]
        m["mde"] = 3e-4
    report["gate"]["rows"][0].update(change=-1.5e-5, baseline=0.997761, current=0.997746)
    for text in (
        render_results_table(report),
        render_markdown(report),
        render_gate_table(report["gate"], only_problems=False),
    ):
        assert not re.search(r"\de[-+]\d", text), re.search(r".*\de[-+]\d.*", text).group(0)
    assert "0.99776" in render_results_table(report)


# --- plots --------------------------------------------------------------------------------


@pytest.fixture
def drawn(monkeypatch):
    """Every matplotlib figure the page draws, after it was drawn."""
    figures = []
    original = _Plotter._png

    def keep(figure):
        data = original(figure)
        figures.append(figure)
        return data

    monkeypatch.setattr(_Plotter, "_png", staticmethod(keep))
    return figures


def test_plot_axes_have_no_offset_or_scientific_labels(drawn):
    report = synthetic_report(gate=False)
    for study in report["studies"]:
        for variant in study["variants"]:
            for m in variant["metrics"].values():
                # Values that differ in the fifth decimal, near 1: matplotlib's default
                # would label the axis "+9.979e-1" with ticks in units of 1e-5.
                m["value"] = 0.99791 + (m["delta"] or 0) * 1e-4
                m["reference_value"] = 0.99791
                m["delta"] = (m["delta"] or 0) * 1e-4
                m["ci"] = [m["delta"] - 2e-6, m["delta"] + 2e-6]
                m["per_frame"] = [[0.99791 + 1e-6 * t for t in range(len(curve))] for curve in m["per_frame"]]
    render_html(report)
    assert len(drawn) >= 4
    for figure in drawn:
        for ax in figure.axes:
            for axis in (ax.xaxis, ax.yaxis):
                assert axis.get_offset_text().get_text() == "", axis.get_offset_text().get_text()
                labels = [t.get_text() for t in axis.get_ticklabels()]
                assert not any(re.search(r"e[-+]?\d|×", label) for label in labels), labels


# --- order --------------------------------------------------------------------------------


def record(variant, value, reference="b"):
    metric = {
        "direction": "higher",
        "value": value,
        "reference_value": 0.5,
        "delta": value - 0.5,
        "ci": [value - 0.6, value - 0.4],
        "n": 2,
        "confidence": 0.95,
        "samples": [value, value],
        "reference_samples": [0.5, 0.5],
        "per_frame": [None, None],
        "details": {},
    }
    return {
        "study": "s",
        "variant": variant,
        "reference": reference,
        "is_reference": variant == reference,
        "nodeid": f"t.py::test[{variant}]",
        "generator": "g",
        "generator_identity": {},
        "config": {},
        "reference_config": {},
        "settings": {},
        "samples": [],
        "expectations": [],
        "metrics": {"m": metric},
    }


def build(records, cases=None):
    return build_report(
        records, profile={"name": "p"}, environment={}, metric_info={}, created="2026-01-01T00:00:00+00:00", cases=cases
    )


def test_the_build_orders_variants_as_the_cases_were_collected():
    collected = ["z", "b", "a#2", "a"]
    cases = [
        {"study": "s", "variant": v, "nodeid": f"t.py::test[{v}]", "outcome": "passed", "reason": None}
        for v in ["z", "b", "a"]
    ]
    report = build([record(v, 0.5) for v in sorted(collected)], cases)
    variants = report["studies"][0]["variants"]
    assert [v["variant"] for v in variants] == ["z", "b", "a", "a#2"]
    assert [v["position"] for v in variants] == [0, 1, 2, 2]
    assert [r["variant"] for r in result_rows(report)] == ["z", "b", "a", "a#2"]
    # The stored cases keep their documented order.
    assert [c["variant"] for c in report["cases"]] == ["a", "b", "z"]


def test_without_cases_the_order_and_the_entries_are_as_before():
    report = build([record(v, 0.5) for v in ["z", "b", "a"]])
    variants = report["studies"][0]["variants"]
    assert [v["variant"] for v in variants] == ["a", "b", "z"]
    assert all("position" not in v for v in variants)


def test_a_report_without_positions_merges_with_one_that_has_them():
    from pytest_ablation.results.merge import merge_reports

    cases = [
        {"study": "s", "variant": v, "nodeid": f"t.py::test[{v}]", "outcome": "passed", "reason": None}
        for v in ["z", "b"]
    ]
    new = build([record("z", 0.5), record("b", 0.5)], cases)
    old = build([record("z", 0.5)], cases)
    for variant in old["studies"][0]["variants"]:
        del variant["position"]
    merged = merge_reports([("new", new), ("old", old)])
    assert [v["variant"] for v in merged["studies"][0]["variants"]] == ["z", "b"]


def test_every_p_value_column_says_its_side():
    # A result's p-value is two-sided (does the variant differ?), a claim's one-sided (is it
    # beyond the margin on the claimed side?): the same cell can show 0.56 and 1.
    from pytest_ablation.report import terminal

    study = {"study": "s", "metrics": ["m"], "variants": []}
    tables = {
        "tests": terminal.test_rows(study)[0],
        "claims": terminal.claim_rows(study, {})[0],
        "terminal claims": terminal._terminal_claim_rows(study, {}, {})[0],
        "verdicts": terminal.verdict_rows({"studies": []})[0],
    }
    sides = {name: {h.split()[-1] for h in headers if h.startswith("p ")} for name, headers in tables.items()}
    assert sides == {
        "tests": {"2-sided"},
        "claims": {"1-sided"},
        "terminal claims": {"1-sided"},
        "verdicts": {"1-sided"},
    }
