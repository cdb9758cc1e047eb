"""A generator's output is refused, not clamped, when it is not a video in [0, 1]."""

import pytest
import torch

from pytest_ablation.run.generation import GeneratedVideo, GeneratorError, check_output


def video(**kw):
    return torch.rand((4, 3, 8, 8), generator=torch.Generator().manual_seed(0), **kw)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: video() * 255, r"values in \[[0-9.e-]+, 25\d[0-9.]*\]; expected \[0, 1\].*x / 255"),
        (lambda: video() * 2 - 1, r"values in \[-0\.9\d*, 0\.9\d*\]; expected \[0, 1\].*\(x \+ 1\) / 2"),
        (lambda: video() - 0.01, r"values in \[-0\.00\d*, 0\.98\d*\]; expected \[0, 1\]"),
        (lambda: (video() * 255).to(torch.uint8), r"of dtype torch.uint8; expected floats in \[0, 1\]"),
        (
            lambda: video().masked_fill(
                torch.zeros(4, 3, 8, 8, dtype=torch.bool).index_fill(0, torch.tensor([1]), True), float("nan")
            ),
            "NaN or infinite",
        ),
        (
            lambda: GeneratedVideo(video(), condition_image=torch.ones(3, 8, 8) * 2),
            r"condition image with values in \[2, 2\]",
        ),
    ],
)
def test_out_of_range_output_is_refused(make, message):
    with pytest.raises(GeneratorError, match=message):
        check_output(make(), generator="gen")


def test_a_video_in_range_passes_unchanged():
    frames = video()
    frames[0, 0, 0, 0], frames[0, 0, 0, 1] = 0.0, 1.0
    assert check_output(frames, generator="gen").video is frames
    # Float rounding just past the ends, as (x + 1) / 2 can give, is accepted.
    check_output(frames.clamp(0, 1) + 5e-5, generator="gen")
