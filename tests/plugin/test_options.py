"""Options, their ini twins, and the marker."""

from report_files import report_of


# The plugin's command line, as users know it: removing, renaming or adding an option is a
# change this list must follow.
FLAGS = {
    "--ablation-profile",
    "--ablation-devices",
    "--ablation-report-dir",
    "--ablation-cache-dir",
    "--ablation-no-cache",
    "--ablation-require-decidable",
    "--ablation-gate",
    "--ablation-save-baseline",
    "--ablation-shard",
    "--ablation-keep-runs",
    "--ablation-save-videos",
    "--ablation-wandb",
    "--ablation-mlflow",
}
# Ini keys without a flag.
INI_ONLY = {"ablation_tolerances"}


def _help_sections(text: str) -> dict[str, list[str]]:
    """``--help``'s text split into its sections: a heading at column 0 ending with ':'."""
    sections: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in text.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            lines = sections.setdefault(line.rstrip(), [])
        else:
            lines.append(line)
    return sections


def _entries(lines: list[str], pattern: str) -> dict[str, str]:
    """``name -> help text`` for each entry whose line matches ``pattern`` at two spaces."""
    import re

    entries: dict[str, str] = {}
    name = None
    for line in lines:
        match = re.match(rf"  ({pattern})(?:[ =]\S*)?\s*(.*)$", line)
        if match:
            name = match.group(1)
            entries[name] = match.group(2).strip()
        elif name and line.startswith(" " * 10):
            entries[name] = (entries[name] + " " + line.strip()).strip()
        else:
            name = None
    return entries


def test_every_option_and_ini_key_is_in_help_with_its_text(pytester):
    result = pytester.runpytest("--help")
    sections = _help_sections(result.stdout.str())
    group = sections["ablation studies (pytest-ablation):"]
    flags = _entries(group, r"--ablation-[a-z-]+")
    assert set(flags) == FLAGS
    assert [flag for flag, text in flags.items() if len(text) < 15] == []
    ini_section = next(lines for heading, lines in sections.items() if heading.startswith("[pytest]"))
    keys = _entries(ini_section, r"ablation_[a-z_]+")
    assert set(keys) == {flag[2:].replace("-", "_") for flag in FLAGS} | INI_ONLY
    assert [key for key, text in keys.items() if len(text) < 15] == []


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
    report = report_of(toy)
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


def test_the_default_cache_is_the_users_and_serves_all_their_projects(toy, monkeypatch, tmp_path):
    import re
    import shutil
    import subprocess
    import sys

    monkeypatch.delenv("PYTEST_ABLATION_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    first = toy.runpytest_subprocess("-p", "no:cacheprovider")
    first.assert_outcomes(passed=3)
    first.stdout.fnmatch_lines(["cache: 0 loaded, * computed*"])
    assert any((tmp_path / "xdg" / "pytest-ablation").rglob("*.safetensors"))
    assert not (toy.path / ".ablation-cache").exists()
    # The same study in another project folder finds every entry already made.
    second = tmp_path / "second-project"
    shutil.copytree(toy.path, second, ignore=shutil.ignore_patterns("reports", "__pycache__"))
    again = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=second,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "3 passed" in again.stdout
    computed = int(re.search(r"^cache: 0 loaded, (\d+) computed", first.stdout.str(), re.M).group(1))
    assert computed > 0
    assert re.search(rf"^cache: {computed} loaded, 0 computed", again.stdout, re.M), again.stdout
    assert not (second / ".ablation-cache").exists()
    # --ablation-cache-dir still chooses another folder.
    third = toy.runpytest_subprocess("-p", "no:cacheprovider", "--ablation-cache-dir=mine")
    third.assert_outcomes(passed=3)
    assert any((toy.path / "mine").rglob("*.safetensors"))
