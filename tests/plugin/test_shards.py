"""--ablation-shard and `pytest-ablation merge`: shards of one run give that run's report."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_ablation.cli.main import main
from report_files import report_of, result_rows

CALM_STUDY = """
import pytest

from conftest import Flicker


@pytest.fixture
def calm(ablation_models):
    return Flicker(ablation_models.get("toy"))


@pytest.mark.ablation("calm", reference="s=0.2", metrics=["temporal_flickering", "mean_brightness"])
@pytest.mark.parametrize("strength", [0.1, 0.2, 0.3, 0.4], ids=lambda s: f"s={s}")
def test_calm(strength, calm, ablation):
    ablation.run(calm, strength=strength)
"""


@pytest.fixture
def two_groups(toy):
    """The flicker study (fixture `flicker`) and the calm study (fixture `calm`): two model groups."""
    toy.makepyfile(test_calm=CALM_STUDY)
    return toy


def report_in(pytester, folder):
    return report_of(pytester, folder)


def studies_of(report):
    return {study["study"] for study in report["studies"]}


@pytest.mark.slow
def test_shards_keep_model_groups_together_and_merge_to_the_single_run(two_groups, capsys):
    toy = two_groups
    toy.runpytest("--ablation-report-dir", "full", "--ablation-no-cache").assert_outcomes(passed=7)
    first = toy.runpytest("--ablation-shard", "1/2", "--ablation-report-dir", "s1", "-v")
    second = toy.runpytest("--ablation-shard", "2/2", "--ablation-report-dir", "s2", "-v")
    first.assert_outcomes(passed=4, deselected=3)
    second.assert_outcomes(passed=3, deselected=4)
    shard_one, shard_two = report_in(toy, "s1"), report_in(toy, "s2")
    # Ordered by model group (calm, then flicker) and dealt 4 and 3: here balance does not
    # need to cut a group, so each study runs on exactly one shard.
    assert studies_of(shard_one) == {"calm"} and studies_of(shard_two) == {"flicker"}
    assert shard_one["shard"] == {"index": 1, "count": 2}
    first.stdout.fnmatch_lines(["*shard 1/2*pytest-ablation merge*"])

    assert (
        main(
            [
                "merge",
                str(toy.path / "s2/report.json"),
                str(toy.path / "s1/report.json"),
                "-o",
                str(toy.path / "merged"),
            ]
        )
        == 0
    )
    assert "merged 2 report(s) (1/2, 2/2)" in capsys.readouterr().out
    merged, single = report_in(toy, "merged"), report_in(toy, "full")
    assert merged["studies"] == single["studies"]
    assert result_rows(merged) == result_rows(single)
    assert sorted(merged["environment"]["workers"]) == ["shard1/main", "shard2/main"]
    assert (toy.path / "merged" / "report.html").exists()
    for study in merged["studies"]:
        for variant in study["variants"]:
            for path in variant["media"].values():
                assert (toy.path / "merged" / path).stat().st_size > 0


def test_the_split_follows_the_selection_not_the_machine(two_groups):
    # -k narrows first; the shards then split what is left, and the same command gives the
    # same split every time.
    toy = two_groups

    def collected(*args):
        result = toy.runpytest("--co", "-q", *args)
        return sorted(line for line in result.outlines if "::" in line)

    first = collected("-k", "calm", "--ablation-shard", "1/2")
    assert first == collected("-k", "calm", "--ablation-shard", "1/2")
    # One study is spread over the shards, in node id order.
    assert first == [f"test_calm.py::test_calm[s={s}]" for s in ("0.1", "0.2")]
    assert collected("-k", "calm", "--ablation-shard", "2/2") == [
        f"test_calm.py::test_calm[s={s}]" for s in ("0.3", "0.4")
    ]
    thirds = [collected("-k", "calm", "--ablation-shard", f"{i}/3") for i in (1, 2, 3)]
    assert [len(shard) for shard in thirds] == [2, 1, 1]
    everything = (
        collected("--ablation-shard", "1/3")
        + collected("--ablation-shard", "2/3")
        + collected("--ablation-shard", "3/3")
    )
    assert sorted(everything) == collected()


@pytest.mark.parametrize("count", [2, 3, 5])
@pytest.mark.slow
def test_one_study_spread_over_shards_merges_to_the_single_run(two_groups, capsys, count):
    # The calm study alone (4 cases): every shard pairs its variants with the reference,
    # which it reads or recomputes through the cache; 5 shards leave the fifth empty.
    toy = two_groups
    toy.runpytest("-k", "calm", "--ablation-report-dir", "full", "--ablation-no-cache").assert_outcomes(
        passed=4, deselected=3
    )
    sizes = {2: [2, 2], 3: [2, 1, 1], 5: [1, 1, 1, 1, 0]}[count]
    paths = []
    for index in range(1, count + 1):
        result = toy.runpytest(
            "-k",
            "calm",
            "--ablation-shard",
            f"{index}/{count}",
            "--ablation-report-dir",
            f"s{index}",
            "--ablation-no-cache",
        )
        assert result.ret == 0, result.outlines
        ran = result.parseoutcomes().get("passed", 0)
        assert ran == sizes[index - 1]
        if ran == 0:
            result.stdout.fnmatch_lines([f"*shard {index}/{count}: nothing to run*"])
        paths.append(str(toy.path / f"s{index}" / "report.json"))
    capsys.readouterr()
    assert main(["merge", *paths, "-o", str(toy.path / "merged")]) == 0
    merged, single = report_in(toy, "merged"), report_in(toy, "full")
    assert merged["studies"] == single["studies"]
    assert result_rows(merged) == result_rows(single)
    assert {case["nodeid"]: case["outcome"] for case in merged["cases"]} == {
        case["nodeid"]: case["outcome"] for case in single["cases"]
    }


@pytest.mark.slow
def test_concurrent_shards_share_one_cache_directory(two_groups, tmp_path):
    toy = two_groups
    toy.runpytest("--ablation-report-dir", "full", "--ablation-no-cache").assert_outcomes(passed=7)
    cache = tmp_path / "shared-cache"
    env = {**os.environ, "PYTHONPATH": str(toy.path)}
    shards = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--ablation-shard",
                f"{i}/2",
                "--ablation-report-dir",
                f"s{i}",
                f"--ablation-cache-dir={cache}",
            ],
            cwd=toy.path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in (1, 2)
    ]
    outputs = [shard.communicate(timeout=300)[0] for shard in shards]
    assert [shard.returncode for shard in shards] == [0, 0], outputs
    assert (
        main(
            [
                "merge",
                str(toy.path / "s1/report.json"),
                str(toy.path / "s2/report.json"),
                "-o",
                str(toy.path / "merged"),
            ]
        )
        == 0
    )
    assert result_rows(report_in(toy, "merged")) == result_rows(report_in(toy, "full"))
    # A warm rerun of one shard reads every entry the concurrent run wrote.
    rerun = toy.runpytest("--ablation-shard", "1/2", "--ablation-report-dir", "again", f"--ablation-cache-dir={cache}")
    rerun.assert_outcomes(passed=4, deselected=3)
    assert report_in(toy, "again")["cache"]["misses"] == 0


@pytest.mark.slow
def test_shards_work_with_xdist(two_groups):
    toy = two_groups
    toy.runpytest("--ablation-report-dir", "full", "--ablation-no-cache").assert_outcomes(passed=7)
    toy.runpytest("-n", "2", "--ablation-shard", "1/2", "--ablation-report-dir", "s1").assert_outcomes(passed=4)
    toy.runpytest("-n", "2", "--ablation-shard", "2/2", "--ablation-report-dir", "s2").assert_outcomes(passed=3)
    assert (
        main(
            [
                "merge",
                str(toy.path / "s1/report.json"),
                str(toy.path / "s2/report.json"),
                "-o",
                str(toy.path / "merged"),
            ]
        )
        == 0
    )
    assert result_rows(report_in(toy, "merged")) == result_rows(report_in(toy, "full"))


@pytest.mark.parametrize("value", ["0/3", "4/3", "1/0", "x/3", "2", "-1/3", "1/2/3"])
def test_bad_shard_is_a_usage_error(toy, value):
    result = toy.runpytest(f"--ablation-shard={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--ablation-shard: got '{value}'; expected I/N*1 <= I <= N*"])


def test_merge_refuses_shards_of_different_environments(two_groups, capsys):
    toy = two_groups
    toy.runpytest("--ablation-shard", "1/2", "--ablation-report-dir", "s1").assert_outcomes(passed=4)
    toy.runpytest("--ablation-shard", "2/2", "--ablation-report-dir", "s2").assert_outcomes(passed=3)
    path = toy.path / "s2" / "report.json"
    report = json.loads(path.read_text())
    report["environment"]["packages"]["torch"] = "0.0.1"
    path.write_text(json.dumps(report))
    assert main(["merge", str(toy.path / "s1/report.json"), str(path), "-o", str(toy.path / "m")]) == 2
    err = capsys.readouterr().err
    assert "environment.packages.torch differs" in err and "0.0.1" in err
    assert not (toy.path / "m" / "report.json").exists()


@pytest.mark.slow
def test_one_real_study_gives_every_one_of_three_shards_a_test():
    # The TMA study alone: once a single model group, so two of three shards had nothing.
    repo = Path(__file__).resolve().parents[2]
    shards = []
    for index in (1, 2, 3):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "ablations/",
                "--co",
                "-q",
                "-p",
                "no:cacheprovider",
                "-k",
                "tma",
                "--ablation-shard",
                f"{index}/3",
                f"--rootdir={repo}",
            ],
            capture_output=True,
            text=True,
            cwd=repo,
        )
        shards.append([line for line in done.stdout.splitlines() if "::" in line])
    assert all(shards), shards
    everything = [nodeid for shard in shards for nodeid in shard]
    assert len(everything) == len(set(everything))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
