"""ExVideo ablation: the adaptive identity 3D convolution.

Reference: the UNet post-tuned with the convolution, sampled with it. Against it:

- ``removed``: the same tuned weights with the convolution taken out at sampling time
  (inference-time ablation: does the tuned model rely on it?);
- ``tuned-without``: post-tuned without the convolution, same budget, clips and seed
  (training-time ablation: does having it during post-tuning help?).

Every variant samples a long video (past SVD's 25 frames: ``exvideo.long_video``, 32 frames
on ``tiny``, 128 elsewhere). The claim is ExVideo's: the convolution improves long-video
consistency after tuning, so without it consistency with the condition image and
frame-to-frame stability are lower. Dynamic degree is reported beside them, because a
still video would score perfectly on both.

On ``tiny`` (random weights) the claims are not expected to hold and none holds in full, so
each ablated variant is a strict expected failure there: the toy SVD's frames are noise-like
for every variant, and the four tuning steps of the tiny recipe move the convolution about
0.004 from the identity, so the variants differ in consistency by about 1e-4, in no
particular direction. Long videos there are 32 frames at 32x32 (the tiny recipe's clip size)
and the profile's 3 steps: past 25 frames, for about a quarter of a second per video on an
idle 2-core CPU; the profile's 64x64 costs three times that, and on a busy machine pushes the
cold run of both studies past two minutes.
"""

import pytest

METRICS = [
    "video_quality",
    "condition_consistency",
    "temporal_flickering",
    "motion_smoothness",
    "dynamic_degree",
]

# SVD's own sampling defaults: guidance rising over the frames from 1 to 3, fps 7.
SVD_SAMPLING = {"guidance_scale": 3.0, "fps": 7}

VARIANTS = {
    "conv": {"identity_conv": True},
    "removed": {"identity_conv": False, "tuned_with": {"identity_conv": True}},
    "tuned-without": {"identity_conv": False},
}


RANDOM_WEIGHTS = (
    "random weights: noise-like frames for every variant and a convolution tuned ~0.004 "
    "away from the identity; consistency differs by ~1e-4, in no particular direction"
)

TOY_BUDGET = (
    "the toy recipe's 40 post-tuning steps leave the convolution near the identity: without "
    "it condition consistency moves +0.010 [-0.046, +0.066] (removed) and +0.005 [-0.049, "
    "+0.056] (tuned-without), and flicker falls slightly (temporal_flickering +0.003 "
    "[+0.001, +0.004] removed); no support for the claim at this budget"
)


def ablated(variant):
    return pytest.param(variant, marks=[
        pytest.mark.ablation_xfail("tiny", reason=RANDOM_WEIGHTS),
        pytest.mark.ablation_xfail("toy", reason=TOY_BUDGET),
    ])


@pytest.mark.ablation("exvideo-identity-conv", reference="conv", metrics=METRICS, settings=SVD_SAMPLING)
@pytest.mark.parametrize(
    "variant",
    [
        "conv",
        ablated("removed"),
        ablated("tuned-without"),
    ],
)
def test_identity_conv(variant, exvideo, ablation):
    result = ablation.run(exvideo, **VARIANTS[variant], **exvideo.long_video)
    if variant != "conv":
        ablation.expect(result, "condition_consistency").below_reference()
        ablation.expect(result, "temporal_flickering").below_reference()
