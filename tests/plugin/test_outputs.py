"""What a run leaves for people and CI systems: JUnit properties, previews, saved videos."""

import json
import xml.etree.ElementTree as ET

import cv2
import pytest
from PIL import Image
from report_files import report_of, result_rows


def gif_milliseconds(animation):
    total = 0
    for index in range(animation.n_frames):
        animation.seek(index)
        total += animation.info["duration"]
    return total


def test_junit_xml_carries_each_variants_metrics_and_claims(toy):
    toy.runpytest("--junitxml=junit.xml").assert_outcomes(passed=3)
    cases = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ET.parse(toy.path / "junit.xml").getroot().iter("testcase")
    }
    results = {(r["variant"], r["metric"]): r for r in result_rows(report_of(toy))}
    still = cases["test_flicker[s=0.0]"]
    assert still["ablation.study"] == "flicker" and still["ablation.reference"] == "s=0.5"
    expected = results["s=0.0", "temporal_flickering"]
    assert float(still["ablation.temporal_flickering.value"]) == pytest.approx(expected["value"], rel=1e-5)
    assert float(still["ablation.temporal_flickering.delta"]) == pytest.approx(expected["delta"], rel=1e-5, abs=1e-9)
    low, high = json.loads(still["ablation.temporal_flickering.ci95"])
    assert low == pytest.approx(expected["ci"][0], rel=1e-5, abs=1e-9)
    assert high == pytest.approx(expected["ci"][1], rel=1e-5, abs=1e-9)
    assert still["ablation.temporal_flickering.claim"] == "above_reference by 0.01: supported"
    assert "ablation.mean_brightness.reference_value" in cases["test_flicker[s=1.0]"]


@pytest.mark.slow
def test_junit_properties_travel_from_xdist_workers(toy):
    toy.runpytest("-n", "2", "--junitxml=junit.xml").assert_outcomes(passed=3)
    names = {
        case.get("name"): [p.get("name") for p in case.iter("property")]
        for case in ET.parse(toy.path / "junit.xml").getroot().iter("testcase")
    }
    assert all("ablation.temporal_flickering.delta" in names[f"test_flicker[s={s}]"] for s in ("0.0", "0.5", "1.0"))


def test_every_variant_gets_a_preview_referenced_by_the_report(toy):
    toy.runpytest().assert_outcomes(passed=3)
    report = report_of(toy)
    for variant in report["studies"][0]["variants"]:
        media = variant["media"]
        strip = Image.open(toy.path / "reports" / media["strip"])
        animation = Image.open(toy.path / "reports" / media["animation"])
        assert strip.format == "PNG" and strip.width > strip.height
        assert animation.format == "GIF"
        # 4 frames at the profile's 8 fps; Pillow merges equal frames (the still s=0.0), so
        # the animation's length, not its frame count, is what every variant shares.
        assert gif_milliseconds(animation) == pytest.approx(4 * 1000 / 8, abs=4 * 10)  # GIF counts in 1/100 s
        if variant["variant"] != "s=0.0":
            assert animation.n_frames == 4
    page = (toy.path / "reports" / "report.html").read_text()
    assert "<table" in page and "data:image/gif;base64," in page
    runs = list((toy.path / "reports" / "runs").iterdir())
    assert (runs[0] / "report.html").read_text() == page


@pytest.mark.parametrize("fmt", ["gif", "png", "mp4"])
def test_save_videos_writes_every_sample_playable(toy, fmt):
    toy.runpytest(f"--ablation-save-videos={fmt}", "-k", "1.0").assert_outcomes(passed=1, deselected=2)
    variant = report_of(toy)["studies"][0]["variants"][0]
    assert variant["variant"] == "s=1.0" and len(variant["videos"]) == 12  # 6 prompts x 2 seeds
    for relative in variant["videos"]:
        path = toy.path / "reports" / relative
        assert relative.startswith("videos/flicker/s=1.0/")
        if fmt == "gif":
            assert Image.open(path).n_frames == 4
        elif fmt == "png":
            frames = sorted(path.iterdir())
            assert len(frames) == 4 and Image.open(frames[0]).size == (8, 8)
        else:
            capture = cv2.VideoCapture(str(path))
            count = 0
            while capture.read()[0]:
                count += 1
            assert count == 4


def test_save_videos_format_is_checked_before_anything_runs(toy):
    result = toy.runpytest("--ablation-save-videos=avi")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--ablation-save-videos: got 'avi'; expected one of mp4, gif, png*"])


def test_only_the_newest_run_copies_are_kept(toy):
    runs = toy.path / "reports" / "runs"
    for _ in range(3):
        toy.runpytest("-k", "1.0", "--ablation-keep-runs=2").assert_outcomes(passed=1, deselected=2)
    kept = sorted(p.name for p in runs.iterdir())
    assert len(kept) == 2
    newest = (runs / kept[-1] / "report.json").read_text()
    assert newest == (toy.path / "reports" / "report.json").read_text()
    toy.runpytest("-k", "1.0", "--ablation-keep-runs=0").assert_outcomes(passed=1, deselected=2)
    assert sorted(p.name for p in runs.iterdir()) == kept  # 0: no new copy, none removed


def test_keep_runs_must_be_a_whole_number(toy):
    result = toy.runpytest("--ablation-keep-runs=-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--ablation-keep-runs: got '-1'; expected a whole number >= 0*"])


EXPECTED_AND_NOT = """
import pytest

@pytest.mark.ablation("x", reference="s=0.5", metrics=["temporal_flickering"])
@pytest.mark.parametrize("strength", [
    0.5,
    pytest.param(1.0, marks=pytest.mark.ablation_xfail("toy-test", reason="noise flickers")),
    0.9,
], ids=lambda s: f"s={s}")
def test_x(strength, flicker, ablation):
    result = ablation.run(flicker, strength=strength)
    ablation.expect(result, "temporal_flickering").not_below_reference()
"""


def test_expected_failures_are_marked_expected_with_their_reason_everywhere(toy):
    toy.makepyfile(test_xfail=EXPECTED_AND_NOT)
    result = toy.runpytest("test_xfail.py")
    result.assert_outcomes(passed=1, failed=1, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            # In parametrize order: s=1.0 (expected), then s=0.9; then the expected one's reason.
            "*ablation verdicts*",
            "refuted (expected)  s=1.0 *temporal_flickering not_below_reference (exploratory)*",
            "refuted  *s=0.9 *temporal_flickering not_below_reference (exploratory)*",
            "*ablation results*",
            "expected: x s=1.0: on profile 'toy-test': noise flickers",
        ]
    )
    assert "expected: x s=0.9" not in result.stdout.str()
    markdown = (toy.path / "reports" / "report.md").read_text()
    page = (toy.path / "reports" / "report.html").read_text()
    expected_row = [line for line in markdown.splitlines() if line.startswith("| s=1.0 ") and "not_below" in line]
    failed_row = [line for line in markdown.splitlines() if line.startswith("| s=0.9 ") and "not_below" in line]
    assert (
        "| refuted (expected) |" in expected_row[0]
        and "expected failure: on profile 'toy-test': noise flickers" in expected_row[0]
    )
    assert "| refuted " in failed_row[0] and "expected" not in failed_row[0]
    assert '<td class="claim-expected">refuted (expected)</td>' in page
    assert "expected failure: on profile &#x27;toy-test&#x27;: noise flickers" in page
    assert page.count('<td class="claim-failed">refuted</td>') == 1
