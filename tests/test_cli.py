import json
import subprocess
import sys

import pytest

from pytest_ablation.cli.main import main
from pytest_ablation.results.report_json import REPORT_FORMAT, REPORT_VERSION
from report_files import metric_entries, result_rows


def report(values, path):
    results = [
        {
            "study": "s",
            "variant": v,
            "reference": "a",
            "metric": m,
            "direction": "higher",
            "value": x,
            "reference_value": x,
            "delta": 0.0,
            "ci": [0.0, 0.0],
            "n": 1,
            "confidence": 0.95,
        }
        for (v, m), x in values.items()
    ]
    studies = [
        {
            "study": "s",
            "references": ["a"],
            "metrics": sorted({m for _, m in values}),
            "variants": [
                {
                    "variant": v,
                    "reference": "a",
                    "is_reference": v == "a",
                    "metrics": {
                        m: next(r for r in results if r["variant"] == v and r["metric"] == m)
                        for m in sorted({m for vv, m in values if vv == v})
                    },
                }
                for v in sorted({v for v, _ in values})
            ],
        }
    ]
    cases = [
        {"study": "s", "variant": v, "nodeid": f"test_s.py::test_s[{v}]", "outcome": "passed", "reason": None}
        for v in sorted({v for v, _ in values})
    ]
    data = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "studies": studies,
        "metrics": {},
        "cases": cases,
        "selection": {"paths": ["."], "files": ["test_s.py"], "ignored": []},
    }
    path.write_text(json.dumps(data))
    return path


def test_compare_exit_codes(tmp_path, capsys):
    base = report({("a", "temporal_flickering"): 0.9}, tmp_path / "base.json")
    same = report({("a", "temporal_flickering"): 0.9}, tmp_path / "same.json")
    worse = report({("a", "temporal_flickering"): 0.8}, tmp_path / "worse.json")
    assert main(["compare", str(base), str(same)]) == 0
    assert main(["compare", str(base), str(worse)]) == 1
    out = capsys.readouterr().out
    assert "regressed" in out and "temporal_flickering" in out
    assert main(["compare", str(base), str(worse), "--tolerance", "temporal_flickering=0.2"]) == 0


def test_show_and_baseline(tmp_path, capsys):
    src = report({("a", "m"): 0.5, ("b", "m"): 0.25}, tmp_path / "r.json")
    assert main(["show", str(src)]) == 0
    assert "s: reference a" in capsys.readouterr().out
    assert main(["baseline", str(src), str(tmp_path / "base.json")]) == 0
    assert result_rows(json.loads((tmp_path / "base.json").read_text())) == result_rows(json.loads(src.read_text()))


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        ('{"format": "pytest-ablation-report", "vers', "not valid JSON"),
        ("[1, 2]", "not a pytest-ablation report"),
    ],
)
def test_bad_reports(tmp_path, capsys, content, message):
    path = tmp_path / "x.json"
    if content is not None:
        path.write_text(content)
    assert main(["show", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "pytest_ablation.cli.main", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "compare" in out.stdout


def test_merge_bad_input(tmp_path, capsys):
    good = report({("a", "m"): 0.5}, tmp_path / "good.json")
    truncated = tmp_path / "truncated.json"
    truncated.write_text(good.read_text()[:40])
    out = str(tmp_path / "merged")
    assert main(["merge", str(good), str(tmp_path / "missing.json"), "-o", out]) == 2
    assert "missing.json does not exist" in capsys.readouterr().err
    assert main(["merge", str(good), str(truncated), "-o", out]) == 2
    assert "is not valid JSON" in capsys.readouterr().err
    (tmp_path / "other.json").write_text('{"some": "json"}')
    assert main(["merge", str(good), str(tmp_path / "other.json"), "-o", out]) == 2
    assert "not a pytest-ablation report" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["merge", str(good)])  # no --output
    assert exit_info.value.code == 2


def test_compare_tolerance_without_a_value_names_the_flag(tmp_path, capsys):
    base = report({("a", "m"): 0.9}, tmp_path / "base.json")
    assert main(["compare", str(base), str(base), "--tolerance", "clip_score"]) == 2
    err = capsys.readouterr().err
    assert "--tolerance: 'clip_score' is not 'metric = tolerance'" in err
    assert "ablation_tolerances" not in err


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("studies"), "schema: top level: the field 'studies' is missing"),
        (
            lambda d: d["studies"][0]["variants"][0]["metrics"]["m"].update(value="high"),
            'schema: studies[0].variants[0].metrics.m.value (s a): got "high"; expected a number or null',
        ),
        (lambda d: d.pop("cases"), "schema: top level: the field 'cases' is missing"),
        (
            lambda d: d["studies"][0]["variants"][0].update(reference=3),
            "schema: studies[0].variants[0].reference (s a): got 3; expected a string",
        ),
        (
            lambda d: (
                d["studies"][0]["variants"][0]
                .setdefault("expectations", [])
                .append({"metric": "m", "claim": "x", "margin": 0, "family": ["a"]})
            ),
            "schema: studies[0].variants[0].expectations[0].family (s a): got a list; expected a string or null",
        ),
    ],
)
def test_malformed_reports_are_errors_not_tracebacks(tmp_path, capsys, change, message):
    path = report({("a", "m"): 0.5}, tmp_path / "r.json")
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    for argv in (["show", str(path)], ["compare", str(path), str(path)], ["html", str(path)]):
        assert main(argv) == 2
        assert message in capsys.readouterr().err


def test_output_paths_that_are_folders_or_files(tmp_path, capsys):
    src = report({("a", "m"): 0.5}, tmp_path / "r.json")
    (tmp_path / "folder").mkdir()
    assert main(["baseline", str(src), str(tmp_path / "folder")]) == 2
    assert "is a directory; expected a file path" in capsys.readouterr().err
    assert main(["html", str(src), "-o", str(tmp_path / "folder")]) == 2
    assert "is a directory" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert main(["merge", str(src), "-o", str(tmp_path / "afile")]) == 2
    assert "is a file; expected a folder" in capsys.readouterr().err


def test_a_baseline_is_not_promoted_from_a_report_with_errors_or_nan(tmp_path, capsys):
    path = report({("a", "m"): 0.5, ("b", "m"): 0.4}, tmp_path / "r.json")
    data = json.loads(path.read_text())
    data["studies"][0]["variants"][1]["metrics"]["m"]["value"] = None
    path.write_text(json.dumps(data))
    assert main(["baseline", str(path), str(tmp_path / "base.json")]) == 2
    assert "has value None" in capsys.readouterr().err
    data["studies"][0]["variants"][1]["metrics"]["m"]["value"] = 0.4
    data["cases"][1].update(outcome="error", reason="RuntimeError: boom")
    path.write_text(json.dumps(data))
    assert main(["baseline", str(path), str(tmp_path / "base.json")]) == 2
    assert "errored or did not finish" in capsys.readouterr().err
    assert not (tmp_path / "base.json").exists()


def test_show_into_a_closed_pipe_is_quiet(tmp_path):
    values = {(f"v{i:04d}", "m"): i / 3000 for i in range(3000)}
    path = report(values, tmp_path / "big.json")
    shown = subprocess.run(
        f"{sys.executable} -m pytest_ablation.cli.main show {path} | head -n 2",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert len(shown.stdout.splitlines()) == 2
    assert "Traceback" not in shown.stderr and "BrokenPipe" not in shown.stderr, shown.stderr


def test_compare_fails_a_null_value_as_nan(tmp_path, capsys):
    base = report({("a", "m"): 0.5}, tmp_path / "base.json")
    current = report({("a", "m"): 0.5, ("b", "m"): 0.4}, tmp_path / "current.json")
    data = json.loads(current.read_text())
    for *_, entry in metric_entries(data):
        entry["value"] = None  # how report.json writes a NaN
    current.write_text(json.dumps(data))
    assert main(["compare", str(base), str(current), "--all"]) == 1
    out = capsys.readouterr().out
    assert "2 nan" in out  # the summary: the reference's and the new variant's null values


def _metric_blocks(out: str) -> dict[str, str]:
    """Each metric's block of `pytest-ablation metrics`, unwrapped to one line."""
    blocks = {}
    for block in out.strip().split("\n\n"):
        first, *rest = block.splitlines()
        blocks[first.split()[0]] = " ".join([first] + [line.strip() for line in rest])
    return blocks


def test_metrics_lists_every_builtin_metric_with_its_backend_and_weights(capsys):
    from pytest_ablation.metrics import get_metric, metric_names

    assert main(["metrics"]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 100
    rows = _metric_blocks(out)
    # The built-in metrics and those installed plugins register (the toy world's), sorted.
    assert list(rows) == sorted(rows) and set(metric_names()) < set(rows)
    assert {
        "subject_consistency",
        "background_consistency",
        "aesthetic_quality",
        "imaging_quality",
        "dynamic_degree_vbench",
        "fvd",
    } <= set(rows)
    for name in metric_names():
        spec, line = get_metric(name), rows[name]
        assert f"tolerance {spec.tolerance:g}" in line
        assert ("informational" if spec.direction == "info" else f"{spec.direction} is better") in line
        assert f"backend: {spec.backend}" in line and f"source: {spec.source}" in line
        if spec.weights:
            # No weights on this machine: each file is named with the variable to set.
            for file in spec.weights:
                assert f"{file}: " in line
            assert "missing (set PYTEST_ABLATION_WEIGHTS_" in line or "needs module(s)" in line
            continue
        expected = "built in-process (random weights)" if "clip" in spec.needs else "none needed"
        assert line.endswith(f"weights (tiny): {expected}"), line
    assert "one value per set of videos" in rows["fvd"]

    # The toy world's shipped judge is found on disk; sd15's comes from open_clip's cache.
    assert main(["metrics", "--profile", "toy"]) == 0
    toy = _metric_blocks(capsys.readouterr().out)["clip_score"].replace(" ", "")
    assert "weights(toy):present:" in toy and "judge/open_clip_model.safetensors" in toy
    assert main(["metrics", "--profile", "sd15"]) == 0
    assert "open_clip tag or hub id 'openai'" in _metric_blocks(capsys.readouterr().out)["clip_score"]
    assert main(["metrics", "--profile", "no-such-profile"]) == 2
    assert "--profile: unknown profile 'no-such-profile'" in capsys.readouterr().err


def test_the_metric_catalogue_lists_the_metrics_of_installed_plugins():
    import subprocess
    import sys

    listed = subprocess.run(
        [sys.executable, "-m", "pytest_ablation.cli.main", "metrics"], capture_output=True, text=True, check=True
    ).stdout
    blocks = _metric_blocks(listed)
    # The toy world registers its parser metrics through its own pytest11 plugin.
    assert {"identity_constancy", "trajectory_jerk", "warping_error"} <= set(blocks)
    assert "clip_score" in blocks and "fvd" in blocks


def test_compare_refuses_a_tolerance_for_a_misspelt_metric(tmp_path, capsys):
    base = report({("a", "temporal_flickering"): 0.9, ("a", "my_metric"): 0.5}, tmp_path / "base.json")
    assert main(["compare", str(base), str(base), "--tolerance", "temporal_flickerng=0.2"]) == 2
    err = capsys.readouterr().err
    assert (
        "--tolerance: no metric named 'temporal_flickerng', so its tolerance would never be "
        "used; did you mean 'temporal_flickering'?"
    ) in err
    # A metric only the reports know (a project's own) is a known one.
    assert main(["compare", str(base), str(base), "--tolerance", "my_metric=0.2"]) == 0
    assert main(["compare", str(base), str(base), "--tolerance", "my_metrc=0.2"]) == 2
    assert "did you mean 'my_metric'?" in capsys.readouterr().err


def test_version_is_the_packages(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"pytest-ablation {version('pytest-ablation')}"


def test_compare_json_holds_what_the_text_says(tmp_path, capsys):
    base = report({("a", "temporal_flickering"): 0.9, ("b", "temporal_flickering"): 0.9}, tmp_path / "base.json")
    worse = report({("a", "temporal_flickering"): 0.9, ("b", "temporal_flickering"): 0.8}, tmp_path / "worse.json")
    assert main(["compare", str(base), str(worse)]) == 1
    text = capsys.readouterr().out
    assert main(["compare", str(base), str(worse), "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["failed"] is True
    assert payload["summary"] == text.strip().splitlines()[-1]
    assert [(row["variant"], row["status"]) for row in payload["rows"]] == [("b", "regressed")]
    assert payload["rows"][0]["change"] == pytest.approx(-0.1)
    assert main(["compare", str(base), str(worse), "--json", "--all"]) == 1
    assert len(json.loads(capsys.readouterr().out)["rows"]) == 2


def test_show_json_carries_the_claims_and_results(tmp_path, capsys):
    src = report({("a", "m"): 0.5, ("b", "m"): 0.25}, tmp_path / "r.json")
    data = json.loads(src.read_text())
    # A claim of a report written before verdicts had three words: its verdict is derived.
    claim = {
        "metric": "m",
        "claim": "above_reference",
        "margin": 0.0,
        "family": "declared",
        "passed": False,
        "decided": True,
        "p_adjusted": 0.5,
        "reason": "not shown",
    }
    data["studies"][0]["variants"][1]["expectations"] = [claim]
    src.write_text(json.dumps(data))
    assert main(["show", str(src), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["results"] == result_rows(data)
    assert [(c["study"], c["variant"], c["metric"]) for c in payload["claims"]] == [("s", "b", "m")]
    assert payload["claims"][0]["verdict"] in ("supported", "refuted", "inconclusive")


def test_metrics_json_lists_the_same_metrics_as_the_text(capsys):
    assert main(["metrics"]) == 0
    text = capsys.readouterr().out
    assert main(["metrics", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    names = [entry["name"] for entry in payload]
    assert names == [block.split()[0] for block in text.strip().split("\n\n")]
    assert all(entry["direction"] in ("higher", "lower", "info") for entry in payload)


@pytest.mark.parametrize("poll", ["-1", "0", "nan", "inf"])
def test_submit_refuses_a_poll_interval_before_submitting_anything(poll, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        main(["submit", "--shards", "2", "--executor", "local", "--poll", poll, "--", "."])
    assert stopped.value.code == 2
    assert f"argument --poll: expected a finite number > 0, got '{poll}'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def _with_profile(path, name, **settings):
    data = json.loads(path.read_text())
    data["profile"] = {"name": name, "settings": {"steps": 3, "seeds": 2, **settings}, "models": {}}
    path.write_text(json.dumps(data))
    return path


def test_compare_refuses_a_baseline_of_another_profile(tmp_path, capsys):
    base = _with_profile(report({("a", "temporal_flickering"): 0.9}, tmp_path / "base.json"), "tiny")
    current = _with_profile(report({("a", "temporal_flickering"): 0.9}, tmp_path / "cur.json"), "toy")
    assert main(["compare", str(base), str(current)]) == 2
    err = capsys.readouterr().err
    assert "the baseline was made on profile 'tiny' and this report on profile 'toy'" in err
    assert main(["compare", str(base), str(base)]) == 0


def test_a_failed_gate_names_what_the_two_reports_did_differently(tmp_path, capsys):
    values = {("a", "temporal_flickering"): 0.9, ("b", "temporal_flickering"): 0.9}
    base = _with_profile(report(values, tmp_path / "base.json"), "tiny")
    worse = _with_profile(
        report({**values, ("b", "temporal_flickering"): 0.8}, tmp_path / "worse.json"), "tiny", steps=4
    )
    assert main(["compare", str(base), str(worse)]) == 1
    out = capsys.readouterr().out
    assert "the baseline and this report were made differently:" in out
    assert "  profile.settings.steps: 3 -> 4" in out
    assert "seeds" not in out.split("made differently:")[1]
    assert main(["compare", str(base), str(worse), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["differences"] == ["profile.settings.steps: 3 -> 4"]
    # A gate that passes says nothing of differences.
    same_values = _with_profile(report(values, tmp_path / "same.json"), "tiny", steps=4)
    assert main(["compare", str(base), str(same_values)]) == 0
    assert "made differently" not in capsys.readouterr().out
