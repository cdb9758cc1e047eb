"""Scoring videos made elsewhere: a run's saved PNG videos, read back through VideoFolder,
give that run's metric values again; a missing or mis-sized video fails naming the file."""

import json

import pytest
import torch

from pytest_ablation import VideoFolder
from pytest_ablation.generation import GenerationRequest, GeneratorError
from pytest_ablation.profiles import load_profile

MADE = '''
import pytest


@pytest.mark.ablation("made", reference="mu=0.98", metrics=["clip_score", "temporal_consistency"])
@pytest.mark.parametrize("mu", [0.6, 0.98], ids=lambda m: f"mu={m}")
def test_made(mu, zs2, ablation):
    ablation.run(zs2, momentum=mu)
'''

READ_BACK = '''
import pytest

from pytest_ablation import VideoFolder


@pytest.mark.ablation("read", reference="mu=0.98", metrics=["clip_score", "temporal_consistency"])
@pytest.mark.parametrize("mu", [0.6, 0.98], ids=lambda m: f"mu={m}")
def test_read(mu, ablation):
    ablation.run(VideoFolder(f"saved/videos/made/mu={mu}"))
'''


def values(report, study):
    return {(r["variant"], r["metric"]): r["value"] for r in report["results"] if r["study"] == study}


@pytest.mark.slow
def test_saved_png_videos_read_back_give_the_same_scores(pytester):
    # Fresh processes: the two runs import different model code, which torch allows once.
    pytester.makepyfile(test_made=MADE)
    result = pytester.runpytest_subprocess("--ablation-profile=tiny", "--ablation-save-videos=png",
                                "--ablation-report-dir=saved", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    made = values(json.loads((pytester.path / "saved" / "report.json").read_text()), "made")

    pytester.makepyfile(test_read=READ_BACK)
    result = pytester.runpytest_subprocess("test_read.py", "--ablation-profile=tiny",
                                "--ablation-report-dir=read", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    read = values(json.loads((pytester.path / "read" / "report.json").read_text()), "read")
    assert set(read) == set(made) and len(made) == 4
    for key, value in made.items():
        assert read[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    # Another run's scores differ: the equality above is not a coincidence of the metrics.
    assert made[("mu=0.6", "clip_score")] != made[("mu=0.98", "clip_score")]


def request(settings, prompt="a red ball", seed_index=0):
    return GenerationRequest.from_settings(settings, prompt=prompt, seed=1, seed_index=seed_index,
                                           device="cpu", config={})


def test_a_missing_video_is_named(tmp_path):
    settings = load_profile("tiny").settings
    with pytest.raises(GeneratorError, match=r"no video for prompt 'a red ball', seed index 1: "
                                             r"looked for '.*a_red_ball-\w+-seed1'"):
        VideoFolder(tmp_path).generate(request(settings, seed_index=1))


def test_a_video_of_the_wrong_size_is_named(tmp_path):
    from PIL import Image

    from pytest_ablation.report.media import slug

    settings = load_profile("tiny").settings  # 4 frames of 64x64
    folder = tmp_path / f"{slug('a red ball')}-seed0"
    folder.mkdir()
    for i in range(settings.frames):
        Image.new("RGB", (32, 32), (i * 40, 0, 0)).save(folder / f"frame_{i:04d}.png")
    with pytest.raises(GeneratorError, match=r"holds 4 frames of 32x32; the study asks for 4 frames of 64x64"):
        VideoFolder(tmp_path).generate(request(settings))
    for i in range(settings.frames):
        Image.new("RGB", (64, 64), (i * 40, 0, 0)).save(folder / f"frame_{i:04d}.png")
    video = VideoFolder(tmp_path).generate(request(settings))
    assert video.shape == (4, 3, 64, 64) and torch.allclose(video[2, 0], torch.full((64, 64), 80 / 255))


def test_a_folder_that_is_not_there_is_refused(tmp_path):
    with pytest.raises(GeneratorError, match="is not a folder of videos"):
        VideoFolder(tmp_path / "nowhere")
