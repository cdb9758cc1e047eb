"""A real study that sweeps a setting, run once on the tiny profile and read back as a user
reads it: the terminal summary, report.json, report.md and report.html.

The study sweeps ``guidance_scale`` (a profile setting passed through ``ablation.run``) over
five values whose ids sort differently as text than in the parametrization.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from pytest_ablation.results.report_json import build_report
from pytest_ablation.report.terminal import render_results_table
from pytest_ablation.report.html import render_html, sweep_key
from pytest_ablation.results.merge import merge_reports

from .conftest import parse_html
from report_files import report_of, result_rows

GUIDANCE = [1.0, 3.0, 7.5, 12.0, 20.0]
IDS = [f"cfg={g}" for g in GUIDANCE]  # as text: cfg=1.0, cfg=12.0, cfg=20.0, cfg=3.0, cfg=7.5
REFERENCE = "cfg=7.5"

STUDY = f'''
import pytest


@pytest.mark.ablation("cfg-sweep", reference="{REFERENCE}",
                      metrics=["clip_score", "temporal_consistency"],
                      seeds=1, settings={{"frames": 2, "steps": 1}})
@pytest.mark.parametrize("g", {GUIDANCE!r}, ids=lambda g: f"cfg={{g}}")
def test_cfg(g, zs2, ablation):
    ablation.run(zs2, guidance_scale=g)
'''

WIDTH = 100


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The run's terminal output and its report folder."""
    project = tmp_path_factory.mktemp("sweep")
    (project / "test_cfg.py").write_text(STUDY)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "test_cfg.py",
            "-p",
            "no:cacheprovider",
            "--ablation-profile",
            "tiny",
            "--ablation-report-dir",
            "reports",
            "--ablation-cache-dir",
            "cache",
            f"--rootdir={project}",
        ],
        capture_output=True,
        text=True,
        cwd=project,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout, project / "reports"


def summary_section(stdout: str) -> list[str]:
    """The lines of the ablation summary that hold the study's tables: from the section's
    title to the cache line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "ablation results" in line)
    end = next(i for i, line in enumerate(lines) if i > start and line.startswith("cache:"))
    return lines[start + 1 : end]


def table_lines(markdown: str, header_start: str) -> list[str]:
    """The rows of the first markdown table whose header row starts with ``header_start``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def first_cells(rows: list[str]) -> list[str]:
    return [row.split("|")[1].strip() for row in rows]


# --- 1. a swept setting -------------------------------------------------------------------


def test_a_swept_setting_is_not_shown_as_the_studys_setting(sweep):
    markdown = (sweep[1] / "report.md").read_text()
    [settings] = [line for line in markdown.splitlines() if line.startswith("Settings:")]
    assert "guidance 7.5" in settings and "varies" in settings, settings
    assert "guidance 1.0" not in settings
    page = (sweep[1] / "report.html").read_text()
    [intro] = [p.text() for p in parse_html(page).iter("p", "note") if "Reference:" in p.text()]
    assert "guidance 7.5" in intro and "guidance 1.0" not in intro


def test_the_config_column_shows_each_variants_swept_value(sweep):
    markdown = (sweep[1] / "report.md").read_text()
    rows = table_lines(markdown, "| variant ")
    header = markdown.splitlines()[
        markdown.splitlines().index(next(line for line in markdown.splitlines() if line.startswith("| variant ")))
    ]
    assert "config" in header
    for variant, g, row in zip(IDS, GUIDANCE, rows):
        assert row.split("|")[1].strip().startswith(variant)
        assert f"guidance_scale={g}" in row.split("|")[2], row
    page = parse_html((sweep[1] / "report.html").read_text())
    [table] = page.iter("table", "results")
    configs = {
        tr.attrs["data-variant"]: [td.text() for td in tr.iter("td")][0]
        for tr in table.iter("tr")
        if "data-variant" in tr.attrs
    }
    assert configs == {v: f"guidance_scale={g}" for v, g in zip(IDS, GUIDANCE)}


def test_a_numeric_swept_setting_is_plotted_as_a_line_over_it(sweep):
    report = report_of(sweep[1], ".")
    [study] = report["studies"]
    assert sweep_key(study["variants"]) == "guidance_scale"
    page = parse_html((sweep[1] / "report.html").read_text())
    captions = [f.text() for f in page.iter("figure", "plot") if f.attrs.get("data-kind") == "metric"]
    assert len(captions) == 2
    assert all(re.match(r"(clip_score|temporal_consistency) over guidance_scale", c) for c in captions)


# --- 2. parametrize order ----------------------------------------------------------------


def test_variants_keep_their_parametrize_order_everywhere(sweep):
    stdout, reports = sweep
    report = report_of(sweep[1], ".")
    [study] = report["studies"]
    assert [v["variant"] for v in study["variants"]] == IDS
    assert [v["position"] for v in study["variants"]] == list(range(5))
    assert [r["variant"] for r in result_rows(report)] == [v for v in IDS for _ in range(2)]
    # The terminal's first table: one row per variant, in order.
    section = summary_section(stdout)
    rows = [line.split()[0] for line in section if line.startswith("cfg=")]
    assert rows[:5] == IDS
    markdown = (reports / "report.md").read_text()
    assert [c.split()[0] for c in first_cells(table_lines(markdown, "| variant "))] == IDS
    page = parse_html((reports / "report.html").read_text())
    [table] = page.iter("table", "results")
    assert [tr.attrs["data-variant"] for tr in table.iter("tr") if "data-variant" in tr.attrs] == IDS
    names = [div.text() for div in page.iter("div", "name")]
    assert names == IDS


@pytest.mark.slow
def test_the_order_survives_a_merge_and_a_saved_report(sweep):
    report = report_of(sweep[1], ".")
    [study] = report["studies"]
    # The records as the cases send them (no position: the build knows the collection).
    records = [
        {k: v for k, v in {**entry, "study": study["study"]}.items() if k != "position"} for entry in study["variants"]
    ]
    common = dict(
        profile=report["profile"],
        environment=report["environment"],
        metric_info=report["metrics"],
        created=report["created"],
    )
    # Two shards, each with the whole collection's cases (in collection order, as the
    # catalogue gives them) but only some of the variants.
    cases = sorted(({**c, "outcome": "deselected"} for c in report["cases"]), key=lambda c: IDS.index(c["variant"]))
    one = build_report(records[1::2], shard=(1, 2), cases=cases, **common)
    two = build_report(records[0::2], shard=(2, 2), cases=cases, **common)
    merged = merge_reports([("one", json.loads(json.dumps(one))), ("two", json.loads(json.dumps(two)))])
    assert [v["variant"] for v in merged["studies"][0]["variants"]] == IDS
    assert [r["variant"] for r in result_rows(merged)] == [v for v in IDS for _ in range(2)]
    # The saved report rendered again (pytest-ablation html / show).
    page = parse_html(render_html(merged))
    [table] = page.iter("table", "results")
    assert [tr.attrs["data-variant"] for tr in table.iter("tr") if "data-variant" in tr.attrs] == IDS
    shown = [line.split()[0] for line in render_results_table(merged).splitlines() if line.startswith("cfg=")]
    assert shown[:5] == IDS


# --- 3. tables that fit and numbers that read ---------------------------------------------


def test_the_terminal_summary_fits_100_columns(sweep):
    section = summary_section(sweep[0])
    assert section, sweep[0]
    widest = max(section, key=len)
    assert len(widest) <= WIDTH, f"{len(widest)} characters: {widest!r}"


def test_markdown_tables_use_no_scientific_notation(sweep):
    markdown = (sweep[1] / "report.md").read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    assert rows
    for row in rows:
        assert not re.search(r"\de[-+]\d", row), row


def test_a_value_and_its_delta_have_the_same_decimals(sweep):
    markdown = (sweep[1] / "report.md").read_text()
    rows = table_lines(markdown, "| variant ")
    assert len(rows) == 5
    for row in rows:
        if row.split("|")[1].split()[0] == REFERENCE:
            continue  # the reference's own row: its value only
        for cell in row.split("|")[3:-1]:
            match = re.match(r"\s*-?\d+(?:\.(\d+))?\s+Δ ([+-]\d+(?:\.(\d+))?) \[([+-][\d.]+), ([+-][\d.]+)\]", cell)
            assert match, cell
            decimals = len(match.group(1) or "")
            assert len(match.group(3) or "") == decimals, cell
            assert all(len(b.partition(".")[2]) == decimals for b in match.group(4, 5)), cell
