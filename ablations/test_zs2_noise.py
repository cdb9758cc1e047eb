"""ZS², study 2: the dependency noise model and how its mixing coefficient is found.

Each frame's initial noise continues the previous frame's, ``eps_i = sqrt(a_i) eps_(i-1) +
sqrt(1 - a_i) n_i``, with ``a_i`` chosen so that the authors' divergence statistic between
consecutive frames hits lambda. The rows:

    two_stage     the paper's search: 10 random candidates, then 15 linear-search steps
                  (kept in [0, 1], so never NaN): the reference
    random        single-stage random search (25 candidates of noise and a, same budget)
    analytic      no search: sqrt(a) = 1 - lambda / e^(1/2), the statistic's expectation
    independent   fresh noise per frame: what the image model alone does
    mixed         PYoCo mixed noise (shared + own part)      } alpha matched to the
    progressive   PYoCo progressive noise (AR(1))            } correlation lambda asks for

TMA at the paper's mu = 0.98 throughout. Scored by CLIP score and video coherence (CLIP
similarity of each frame to the previous and to the first), with temporal consistency and
dynamic degree shown beside them.

Matched to the correlation sqrt(a) = 1 - lambda / e^(1/2), progressive noise is the same
AR(1) as the analytic rule, drawn in the same order: its row repeats the analytic row up to
float rounding. That cross-checks the two, and shows that what the dependency noise model
adds to PYoCo's progressive noise is the per-frame search.

Claim (declared on the marker), relative to the two-stage reference: the dependency noise
raises video coherence over independent noise. The other rows carry no claim: the paper
states none for them.

Lambda. The paper's default, 0.01, gives a still video under the paper's own search: the
statistic is about 1.65 * (1 - sqrt(a)), so at a = 0.9 it is about 0.085, and whenever
lambda is below half of that (about 0.04) the error at a = 1 (which is lambda) beats the
error at 0.9 and the search climbs to a = 1, where the published code then takes the square
root of a negative number (NaN) and the safe version stays (all frames share one noise). At
0.1, the middle of the authors' motion-control sweep (0 to 0.25), every row gets the same
lambda, but not the same dependency: the searches pick candidates by the statistic, not by
the correlation, and land where their search ends (sqrt(a) near 0.9 on Stable Diffusion's
64x64 latents, less precisely on the tiny profile's 8x8, where the statistic averages 256
values), while the analytic rule gives sqrt(a) = 0.94 and PYoCo's noises are set to that
correlation. So the rows are compared at one lambda, not at one dependency strength.

What each row achieved is measured, not assumed: every video's initial noise is summarised
by its per-frame standard deviation (``noise_std``) and the mean correlation of consecutive
frames (``noise_correlation``), with the lambda it was drawn at (``noise_lam``), and each
row's mean over its videos is the variant's ``details`` in report.json and the "generator
details" table of the report. To compare the rows at equal dependency instead, pass the
sampler's ``correlation`` option (``ablation.run(zs2, noise=..., correlation=0.94)``): the
searches then get the lambda that reaches that correlation on the profile's latent shape
(calibrated once on a fixed draw), the analytic rule and PYoCo's noises the exact value.
"""

import pytest

LAM = 0.1

# Measured on `toy` (8 prompts x 1 seed; delta [95% t-interval], independent minus two_stage).
TOY_JUDGE = (
    "inconclusive on the toy world: independent noise changes the toy videos (dynamic degree "
    "+28.4 [+20.9, +36.0]), but every frame still shows the prompt's colour and shape, which is "
    "all the toy judge reads: video coherence moves -0.0025 [-0.034, +0.030] (p adj. 0.43)"
)


@pytest.mark.ablation(
    "zs2-noise",
    reference="two_stage",
    metrics=["clip_score", "video_coherence", "temporal_consistency", "dynamic_degree"],
    # The study's confirmatory family: one claim, decidable from 6 prompts on.
    claims={"independent": ["video_coherence below_reference"]},
    # The scene parser's view of the motion each noise gives (README: The toy world).
    metrics_on={"toy": ["warping_error", "trajectory_jerk", "background_drift"]},
)
@pytest.mark.parametrize(
    "noise",
    [
        "two_stage",
        "random",
        "analytic",
        pytest.param("independent", marks=pytest.mark.ablation_xfail("toy", reason=TOY_JUDGE)),
        "mixed",
        "progressive",
    ],
    ids=str,
)
def test_noise(noise, zs2, ablation):
    ablation.run(zs2, momentum=0.98, noise=noise, lam=LAM)
