"""A study whose seed index is its unit (``unit="seed"``), and generator details in the report."""

import numpy as np
import pytest
from report_files import report_of

SEED_STUDY = '''
import pytest
import torch


class Replicates:
    """Seed index k is replicate k of the variant: its brightness is offset by OFFSETS[k]
    for the variant "up" only; each sample reports its replicate in info["details"]."""

    OFFSETS = [0.05, 0.10, 0.20]

    def cache_identity(self):
        return {"toy": "replicates"}

    def generate(self, request):
        from pytest_ablation.run.generation import GeneratedVideo

        g = request.generator
        base = torch.rand((request.frames, 3, request.height, request.width), generator=g) * 0.5
        lift = self.OFFSETS[request.seed_index] if request.config["arm"] == "up" else 0.0
        return GeneratedVideo(video=base + lift, info={"details": {
            "replicate": request.seed_index, "lift": lift}})


@pytest.mark.ablation("replicates", reference="flat", metrics=["mean_brightness"], seeds=3,
                      unit="seed")
@pytest.mark.parametrize("arm", ["flat", "up"])
def test_replicates(arm, ablation):
    ablation.run(Replicates(), arm=arm)
'''


def test_the_seed_index_is_the_unit_and_details_reach_the_report(toy):
    toy.makepyfile(test_flicker=SEED_STUDY)
    result = toy.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    report = report_of(toy)
    [study] = report["studies"]
    variants = {v["variant"]: v for v in study["variants"]}
    up = variants["up"]["metrics"]["mean_brightness"]
    # 6 prompts x 3 seeds = 18 samples; the units are the 3 seed indexes, prompts averaged.
    assert up["unit"] == "seed" and up["n"] == 3 and up["n_samples"] == 18
    samples = variants["up"]["samples"]
    diffs = np.array(up["samples"]) - np.array(up["reference_samples"])
    by_seed = [diffs[[s["seed_index"] == k for s in samples]].mean() for k in range(3)]
    assert up["delta"] == pytest.approx(np.mean(by_seed), abs=1e-12)
    half = 4.302652729911275 * np.std(by_seed, ddof=1) / np.sqrt(3)  # t(0.975, 2)
    assert up["ci"] == pytest.approx([np.mean(by_seed) - half, np.mean(by_seed) + half], abs=1e-9)
    # Details: per name, the mean over the samples and each sample's value in sample order.
    details = variants["up"]["details"]
    assert details["replicate"]["samples"] == [s["seed_index"] for s in samples]
    assert details["replicate"]["value"] == pytest.approx(1.0)
    assert details["lift"]["value"] == pytest.approx((0.05 + 0.10 + 0.20) / 3)
    assert variants["flat"]["details"]["lift"]["value"] == 0.0
    # The report's tables name the unit and show the details.
    markdown = (toy.path / "reports" / "report.md").read_text()
    assert "over 3 seeds (18 samples)" in markdown
    assert "generator details" in markdown and " lift " in markdown


def test_an_unknown_unit_is_refused(toy):
    toy.makepyfile(test_flicker=SEED_STUDY.replace('unit="seed"', 'unit="tuning"'))
    result = toy.runpytest("-p", "no:randomly")
    result.stderr.fnmatch_lines(["*unit must be one of 'prompt', 'seed', got 'tuning'*"])
    assert result.ret != 0
