"""Options, their ini twins, and the marker."""

import json


def test_options_are_documented_in_help(pytester):
    result = pytester.runpytest("--help")
    for flag in (
        "--ablation-profile",
        "--ablation-devices",
        "--ablation-report-dir",
        "--ablation-cache-dir",
        "--ablation-no-cache",
        "--ablation-gate",
        "--ablation-save-baseline",
    ):
        result.stdout.fnmatch_lines([f"*{flag}*"])
    for ini in (
        "ablation_profile",
        "ablation_devices",
        "ablation_report_dir",
        "ablation_cache_dir",
        "ablation_no_cache",
        "ablation_gate",
        "ablation_save_baseline",
        "ablation_tolerances",
    ):
        result.stdout.fnmatch_lines([f"*{ini}*"])


def test_marker_is_registered(pytester):
    pytester.runpytest("--markers").stdout.fnmatch_lines(["@pytest.mark.ablation(study, reference=*"])
    pytester.makepyfile("""
        import pytest
        @pytest.mark.ablation("s", metrics=["temporal_flickering"])
        def test_x():
            pass
    """)
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)


def test_ini_twins_set_report_and_cache_dirs(toy):
    toy.makeini("[pytest]\nablation_profile = toy.toml\nablation_report_dir = out/r\nablation_cache_dir = store\n")
    toy.runpytest().assert_outcomes(passed=3)
    assert (toy.path / "out" / "r" / "report.json").exists()
    assert any((toy.path / "store").rglob("*.safetensors"))
    assert not (toy.path / ".ablation-cache").exists()


def test_command_line_beats_ini(toy):
    toy.makeini("[pytest]\nablation_profile = toy.toml\nablation_report_dir = from-ini\n")
    toy.runpytest("--ablation-report-dir=from-cli").assert_outcomes(passed=3)
    assert (toy.path / "from-cli" / "report.json").exists()
    assert not (toy.path / "from-ini").exists()


def test_ini_no_cache(toy):
    toy.makeini("[pytest]\nablation_profile = toy.toml\nablation_no_cache = true\n")
    toy.runpytest().assert_outcomes(passed=3)
    assert not (toy.path / ".ablation-cache").exists()


def test_profile_given_on_the_command_line(toy):
    toy.makeini("[pytest]\n")
    toy.runpytest("--ablation-profile=toy.toml").assert_outcomes(passed=3)
    report = json.loads((toy.path / "reports" / "report.json").read_text())
    assert report["profile"]["name"] == "toy-test"


def test_header_names_profile_and_studies(toy):
    toy.runpytest().stdout.fnmatch_lines(
        ["ablation: profile 'toy-test' (a callable model for plugin tests), studies: flicker"]
    )


def test_keep_runs_takes_only_ascii_digits(toy):
    import pytest

    # "²" passes str.isdigit() but not int(); "٣" (Arabic-Indic three) passes both.
    for value in ("²", "٣", "1²", "３"):
        result = toy.runpytest(f"--ablation-keep-runs={value}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR, value
        result.stderr.fnmatch_lines([f"ERROR: --ablation-keep-runs: got '{value}'; expected a whole number >= 0*"])
        assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    toy.makeini("[pytest]\nablation_profile = toy.toml\nablation_keep_runs = ²\n")
    result = toy.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ablation_keep_runs (ini): got '²'; expected a whole number >= 0*"])
