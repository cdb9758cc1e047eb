"""report.html read back with html.parser: structure, marks, embedded images, no network."""

from __future__ import annotations

import base64
import copy
import io
import re
import shutil

import pytest
from PIL import Image

from pytest_ablation.report.html import best_variants, render_html, sweep_key, write_html

from .conftest import (
    EXVIDEO_FRAMES,
    EXVIDEO_VALUES,
    METRIC_INFO,
    TMA_FRAMES,
    TMA_VALUES,
    add_previews,
    parse_html,
    synthetic_report,
)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """One report with previews, rendered once for the tests that only read the page
    (drawing the plots is the slow part)."""
    report_dir = tmp_path_factory.mktemp("reports")
    report = add_previews(synthetic_report(), report_dir)
    return report, report_dir, render_html(report, media_root=report_dir)


@pytest.fixture(scope="module")
def page(rendered):
    return parse_html(rendered[2])


@pytest.fixture
def own_copy(rendered, tmp_path):
    """The rendered report and its media folder, for a test to change."""
    report, report_dir, _ = rendered
    shutil.copytree(report_dir / "media", tmp_path / "media")
    return copy.deepcopy(report), tmp_path


def results_tables(root):
    return {t.attrs["data-study"]: t for t in root.iter("table", "results")}


def cells(table, metric):
    """{variant: <td>} of one metric's column."""
    return {
        tr.attrs["data-variant"]: td
        for tr in table.iter("tr")
        if "data-variant" in tr.attrs
        for td in tr.iter("td")
        if td.attrs.get("data-metric") == metric
    }


def decode_data_uri(src: str) -> tuple[str, bytes]:
    match = re.fullmatch(r"data:(image/(?:png|gif));base64,([A-Za-z0-9+/=]+)", src)
    assert match, f"not a base64 image data URI: {src[:60]}"
    return match.group(1), base64.b64decode(match.group(2), validate=True)


def test_one_table_per_study_with_a_row_per_variant_and_a_column_per_metric(page):
    tables = results_tables(page)
    assert sorted(tables) == ["exvideo-position", "zs2-tma"]
    expected = {
        "exvideo-position": (EXVIDEO_VALUES, ["dynamic_degree", "temporal_flickering", "warping_error"]),
        "zs2-tma": (TMA_VALUES, ["clip_score", "dynamic_degree"]),
    }
    for study, (values, metrics) in expected.items():
        table = tables[study]
        rows = [tr.attrs["data-variant"] for tr in table.iter("tr") if "data-variant" in tr.attrs]
        assert rows == sorted(values)
        headers = [th.attrs["data-metric"] for th in table.iter("th") if "data-metric" in th.attrs]
        assert headers == metrics
        for metric in metrics:
            assert len(cells(table, metric)) == len(values)


def test_cells_show_value_delta_and_interval(page):
    table = results_tables(page)["zs2-tma"]
    cell = cells(table, "clip_score")["mu=0.6"]
    text = cell.text()
    # value 4.2, delta 4.2 - 4.12 = +0.08 with interval [+0.078, +0.082]; the column's
    # decimals show two significant digits of its narrowest interval (+-0.002).
    assert "4.2000" in text and "Δ +0.0800" in text and "[+0.0780, +0.0820]" in text
    assert "reference" in cells(table, "clip_score")["mu=0.98"].text()
    # The reference row is labelled as such.
    labels = {tr.attrs["data-variant"]: tr.text() for tr in table.iter("tr") if "data-variant" in tr.attrs}
    assert "(reference)" in labels["mu=0.98"] and "(reference)" not in labels["mu=0.6"]


def test_best_variant_is_marked_by_the_metrics_direction(page):
    tables = results_tables(page)

    def marked(study, metric):
        return {v for v, td in cells(tables[study], metric).items() if td.attrs.get("data-best") == "true"}

    assert marked("zs2-tma", "clip_score") == {"mu=0.6"}  # higher is better
    assert marked("exvideo-position", "temporal_flickering") == {"static"}  # higher is better
    assert marked("exvideo-position", "warping_error") == {"static"}  # lower is better
    assert marked("zs2-tma", "dynamic_degree") == set()  # info: nothing is best
    assert marked("exvideo-position", "dynamic_degree") == set()
    td = cells(tables["zs2-tma"], "clip_score")["mu=0.6"]
    assert "best" in td.classes and "best" in td.text()


def test_best_variants_ties_and_all_equal():
    study = {
        "variants": [
            {
                "variant": name,
                "reference": "a",
                "is_reference": name == "a",
                "metrics": {"m": {"value": value, "delta": value - 1.0, "significant": name != "a"}},
            }
            for name, value in (("a", 1.0), ("b", 2.0), ("c", 2.0))
        ]
    }
    assert best_variants(study, "m", "higher") == {"b", "c"}
    # The reference is best only when every other variant is significantly worse.
    assert best_variants(study, "m", "lower") == {"a"}
    study["variants"][2]["metrics"]["m"]["significant"] = False
    assert best_variants(study, "m", "higher") == {"b"}
    assert best_variants(study, "m", "lower") == set()
    # Best by value but not significantly different after adjustment: nothing is marked.
    study["variants"][1]["metrics"]["m"]["significant"] = False
    assert best_variants(study, "m", "higher") == set()
    for v in study["variants"]:
        v["metrics"]["m"]["value"] = 1.0
    # When every variant scores the same, none is singled out.
    assert best_variants(study, "m", "higher") == set()


def test_gate_regressions_and_improvements_are_marked(page):
    tables = results_tables(page)
    regressed = cells(tables["zs2-tma"], "clip_score")["mu=0.0"]
    assert regressed.attrs.get("data-gate") == "regressed"
    assert "gate-regressed" in regressed.classes and "regressed" in regressed.text()
    improved = cells(tables["exvideo-position"], "warping_error")["cyclic"]
    assert improved.attrs.get("data-gate") == "improved" and "improved" in improved.text()
    ok = cells(tables["zs2-tma"], "clip_score")["mu=0.8"]
    assert ok.attrs.get("data-gate") == "ok" and "regressed" not in ok.text()
    # The gate section lists the problems, including a result this run no longer has.
    gate = next(s for s in page.iter("section") if s.attrs.get("id") == "gate")
    statuses = {
        ([td.text() for td in tr.iter("td")][1], tr.attrs["data-status"])
        for tr in gate.iter("tr")
        if "data-status" in tr.attrs
    }
    assert statuses == {("mu=0.0", "regressed"), ("mu=0.4", "missing"), ("cyclic", "improved")}
    assert "failed" in gate.text()


def test_previews_and_plots_are_embedded_images_that_decode(page):
    images = list(page.iter("img"))
    assert images
    strips, animations, plots = [], [], []
    for img in images:
        mime, data = decode_data_uri(img.attrs["src"])
        image = Image.open(io.BytesIO(data))
        image.load()
        if "preview-strip" in img.classes:
            strips.append((img.attrs["data-variant"], mime, image))
        elif "preview-animation" in img.classes:
            animations.append((img.attrs["data-variant"], mime, image))
        else:
            plots.append((mime, image))
    assert len(strips) == len(animations) == len(TMA_VALUES) + len(EXVIDEO_VALUES)
    assert all(mime == "image/png" and image.format == "PNG" and image.height >= 96 for _, mime, image in strips)
    frames = {name: image.n_frames for name, mime, image in animations if mime == "image/gif" and image.format == "GIF"}
    assert frames == {**{name: TMA_FRAMES for name in TMA_VALUES}, **{name: EXVIDEO_FRAMES for name in EXVIDEO_VALUES}}
    # zs2-tma: one plot per metric; exvideo-position: one per metric and one drift plot per
    # metric (32 frames); all PNG.
    assert len(plots) == 2 + 3 + 3
    assert all(mime == "image/png" and image.width > 100 for mime, image in plots)


def test_plot_kinds_follow_the_study_shape(page):
    figures = {}
    for section in page.iter("section", "study"):
        figures[section.attrs["id"]] = [
            (f.attrs["data-metric"], f.attrs["data-kind"], f.text()) for f in section.iter("figure")
        ]
    tma = figures["study-zs2-tma"]
    # A sweep over one numeric key: the metric drawn over momentum, no drift for 4 frames.
    assert [(m, k) for m, k, _ in tma] == [("clip_score", "metric"), ("dynamic_degree", "metric")]
    assert all("over momentum" in text for _, _, text in tma)
    ex = figures["study-exvideo-position"]
    assert sorted(k for _, k, _ in ex) == ["drift"] * 3 + ["metric"] * 3
    assert all("vs reference" in text or "variant − reference" in text for _, k, text in ex if k == "metric")


def test_sweep_key_needs_exactly_one_numeric_difference():
    report = synthetic_report()
    tma, exvideo = report["studies"][1], report["studies"][0]
    assert sweep_key(tma["variants"]) == "momentum"
    assert sweep_key(exvideo["variants"]) is None  # varies, but not a number
    tma["variants"][0]["config"]["lam"] = 0.5
    assert sweep_key(tma["variants"]) is None  # two keys vary


def test_nothing_points_outside_the_page(rendered):
    text = rendered[2]
    root = parse_html(text)
    for node in root.iter():
        for name in ("src", "href"):
            value = node.attrs.get(name)
            if value is None:
                continue
            assert not re.match(r"\s*(https?:)?//", value, re.I), f"{node.tag} {name}={value[:80]}"
            if name == "src":
                assert value.startswith("data:image/"), value[:80]
            else:
                assert value.startswith("#"), value
    assert not list(root.iter("script")) and not list(root.iter("link"))
    assert "http://" not in text and "https://" not in text


def test_metric_definitions_and_sources_appear(page):
    text = page.text()
    for info in METRIC_INFO.values():
        assert info["definition"] in text  # escaped in the file, plain once parsed
        assert info["source"] in text
    header = next(page.iter("dl", "header")).text()
    assert "tiny" in header and "2bcdadfaf42a" in header and "uncommitted changes" in header
    assert "torch 2.15.0" in header and "2026-01-02T03:04:05+00:00" in header
    assert "1 regressed" in header


def test_report_without_media_and_gate_renders(tmp_path):
    report = synthetic_report(gate=False)
    text = render_html(report, media_root=None)
    root = parse_html(text)
    assert len(list(root.iter("table", "results"))) == 2
    notes = list(root.iter("div", "no-preview"))
    assert len(notes) == 2 * (len(TMA_VALUES) + len(EXVIDEO_VALUES))
    assert all(not n.attrs.get("data-gate") for n in root.iter("td"))
    assert not any(s.attrs.get("id") == "gate" for s in root.iter("section"))
    # Only plots remain as images.
    assert all(img.attrs["src"].startswith("data:image/png;base64,") for img in root.iter("img"))


@pytest.mark.slow
def test_missing_or_outside_preview_files_give_a_note(own_copy, tmp_path_factory):
    report, report_dir = own_copy
    variants = report["studies"][1]["variants"]
    (report_dir / variants[0]["media"]["strip"]).unlink()
    variants[1]["media"]["animation"] = "../../etc/passwd"
    variants[2]["media"] = None
    secret = tmp_path_factory.mktemp("elsewhere") / "secret.png"
    secret.write_bytes((report_dir / variants[3]["media"]["strip"]).read_bytes())
    variants[3]["media"]["strip"] = str(secret)  # absolute path outside the report folder
    root = parse_html(render_html(report, media_root=report_dir))
    missing = {(n.attrs["data-variant"], n.attrs["data-kind"]) for n in root.iter("div", "no-preview")}
    assert missing == {
        (variants[0]["variant"], "strip"),
        (variants[1]["variant"], "animation"),
        (variants[2]["variant"], "strip"),
        (variants[2]["variant"], "animation"),
        (variants[3]["variant"], "strip"),
    }


def test_text_from_the_report_is_escaped(tmp_path):
    report = synthetic_report()
    study = report["studies"][0]
    hostile = '<script>alert("x")</script>&'
    study["study"] = hostile
    study["variants"][0]["variant"] = hostile
    report["metrics"]["warping_error"]["definition"] = "<b>bold</b> & more"
    add_previews(report, tmp_path)
    text = render_html(report, media_root=tmp_path)
    assert "<script" not in text and "<b>bold" not in text
    root = parse_html(text)
    assert hostile in results_tables(root)[hostile].attrs["data-study"]
    assert "<b>bold</b> & more" in root.text()
    assert len(list(root.iter("img", "preview-strip"))) == len(TMA_VALUES) + len(EXVIDEO_VALUES)


def test_output_is_deterministic_and_written_atomically(rendered, own_copy):
    first = rendered[2]
    report, report_dir = own_copy
    # Same report, media copied elsewhere: the same bytes (no paths or times leak in).
    path = write_html(report, report_dir / "report.html", media_root=report_dir)
    assert path.read_text(encoding="utf-8") == first
    # No temporary file is left beside it.
    assert sorted(p.name for p in report_dir.iterdir()) == ["media", "report.html"]


@pytest.mark.slow
def test_the_page_opens_with_every_claim_and_its_verdict():
    import json
    from pathlib import Path

    from pytest_ablation.stats.claims import verdict_of

    # A report of a real run of this repository's studies (the CI baseline).
    report = json.loads((Path(__file__).resolve().parents[2] / "reports" / "baseline.json").read_text())
    claims = [
        (study["study"], variant["variant"], verdict_of(e))
        for study in report["studies"]
        for variant in study["variants"]
        for e in variant.get("expectations") or ()
    ]
    assert claims
    root = parse_html(render_html(report))
    sections = [node for node in root.iter("section")]
    assert sections[0].attrs.get("id") == "claims"
    assert all("study" in s.classes for s in sections[1 : 1 + len(report["studies"])])
    rows = [[cell.text() for cell in row.iter("td")] for row in sections[0].iter("tr") if list(row.iter("td"))]
    assert sorted((row[1], row[2], row[0].split()[0]) for row in rows) == sorted(claims)
    tally = next(sections[0].iter("p")).text()
    assert tally.startswith(f"{len(claims)} claim(s):")
    assert root.iter("nav") and next(next(root.iter("nav")).iter("a")).attrs["href"] == "#claims"


def test_a_page_without_claims_has_no_claims_section(rendered):
    report, _, text = rendered
    has_claims = any(v.get("expectations") for s in report["studies"] for v in s["variants"])
    assert ('<section id="claims">' in text) == has_claims
