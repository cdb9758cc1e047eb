"""The training CLI: stage names, prerequisites, and a short real run writing a manifest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_ablation.models.manifest import MANIFEST, verify_weights
from toyworld import train
from toyworld.train import STAGES, main, missing_inputs, ordered

ALLOWED = "judge, text, vae, t2i, i2v"
REPOSITORY = Path(__file__).resolve().parents[2]


def test_an_unknown_stage_exits_2_naming_the_allowed_stages(capsys, tmp_path):
    with pytest.raises(SystemExit) as caught:
        main(["judge", "bogus", "--out", str(tmp_path)])
    assert caught.value.code == 2
    error = capsys.readouterr().err
    assert "'bogus'" in error and ALLOWED in error
    assert not any(tmp_path.iterdir()), "nothing may be trained or written before the check"


def test_the_module_runs_as_a_script_from_the_repository_root():
    result = subprocess.run(
        [sys.executable, "-m", "toyworld.train", "nonsense"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert ALLOWED in result.stderr


def test_a_stage_with_missing_inputs_says_which_stage_to_run_first(capsys, tmp_path):
    with pytest.raises(SystemExit) as caught:
        main(["t2i", "--out", str(tmp_path)])
    assert caught.value.code == 2
    error = capsys.readouterr().err
    assert "stage 't2i' needs the outputs of stage 'text'" in error
    assert "python -m toyworld.train text" in error


def test_inputs_made_earlier_in_the_same_run_count(tmp_path):
    # Named in any order, stages run in dependency order, so t2i's inputs will exist.
    stages = ordered(["i2v", "t2i", "vae", "text"])
    assert [stage.name for stage in stages] == ["text", "vae", "t2i", "i2v"]
    assert missing_inputs(stages, tmp_path) is None
    assert "stage 'vae'" in missing_inputs(ordered(["text", "t2i"]), tmp_path)
    for output in STAGES["text"].outputs + STAGES["vae"].outputs:
        (tmp_path / output).mkdir(parents=True)
    assert missing_inputs(ordered(["i2v"]), tmp_path) is None


def test_no_stage_means_every_stage_in_order():
    assert [stage.name for stage in ordered([])] == ALLOWED.split(", ")


@pytest.mark.parametrize("option", [["--steps", "0"], ["--threads", "0"], ["--seed", "-1"]])
def test_bad_numbers_are_usage_errors(option, capsys, tmp_path):
    with pytest.raises(SystemExit) as caught:
        main(["judge", "--out", str(tmp_path), *option])
    assert caught.value.code == 2
    assert option[0] in capsys.readouterr().err


def test_a_stage_whose_module_cannot_be_imported_fails_before_training(monkeypatch, capsys, tmp_path):
    broken = train.Stage("judge", "toyworld.no_such_module")
    monkeypatch.setitem(STAGES, "judge", broken)
    assert main(["judge", "--out", str(tmp_path)]) == 1
    assert "no_such_module" in capsys.readouterr().out
    assert not (tmp_path / MANIFEST).exists()


def test_two_judge_steps_write_weights_manifest_and_figures(capsys, tmp_path):
    out = tmp_path / "weights"
    assert main(["judge", "--steps", "2", "--threads", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "judge: step 2/2" in printed and "zero_shot_accuracy" in printed
    manifest = json.loads((out / MANIFEST).read_text())
    assert list(manifest["files"]) == ["judge/open_clip_model.safetensors"]
    assert verify_weights(out) == [out / "judge" / "open_clip_model.safetensors"]
    figures = json.loads((out / train.RECORD).read_text())["judge"]
    assert figures["steps"] == 2 and figures["figures"]["seconds"] > 0
    assert 0.0 <= figures["figures"]["zero_shot_accuracy"] <= 1.0


def test_quality_reports_stages_without_weights_as_not_trained(capsys, tmp_path):
    from toyworld import quality

    assert quality.main(["judge", "text", "--out", str(tmp_path), "--threads", "1"]) == 1
    printed = capsys.readouterr().out
    assert "judge: not trained yet" in printed and "text: not trained yet" in printed


def test_quality_rejects_an_unknown_stage(capsys):
    from toyworld import quality

    with pytest.raises(SystemExit) as caught:
        quality.main(["bogus"])
    assert caught.value.code == 2 and ALLOWED in capsys.readouterr().err
