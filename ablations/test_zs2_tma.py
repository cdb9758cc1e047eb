"""ZS², study 1: Temporal Momentum Attention (TMA).

Every self-attention layer of the image UNet attends to a running momentum of the keys and
values over frames, ``K~_k = mu * K~_(k-1) + (1 - mu) * K_k``. The ablation sweeps mu:

    mu = 0      plain per-frame self-attention (frames sampled as unrelated images)
    mu = 0.6    weak momentum
    mu = 0.8
    mu = 0.98   the paper's default: the reference
    mu = 1      Text2Video-Zero's cross-frame attention (every frame attends to frame 0)

Everything else is ZS²'s default: two-stage dependency noise at the noise study's lambda.
Scored by CLIP score (text alignment) and temporal consistency (CLIP similarity of
consecutive frames), with dynamic degree (optical-flow motion) beside them, since a still
video is perfectly consistent.

Claims (declared on the marker, the study's confirmatory family), relative to the reference
mu = 0.98: TMA raises temporal consistency over self-attention, and loses at most CLIP_MARGIN
points of CLIP score doing so. The other rows carry no claim: the paper states none for them.
On a profile with too few prompts to decide two claims (``tiny``: 2) the mu=0 case is an
expected failure, listed at collection.
"""

import pytest

# The noise study's lambda (see test_zs2_noise.py for why 0.1 and not the paper's 0.01).
LAM = 0.1

# CLIP score is on a 0-100 scale where Stable Diffusion 1.5 videos score about 30 and
# published zero-shot methods differ by 0.2 to 1 point: one point is the most TMA may cost.
CLIP_MARGIN = 1.0

# The study's confirmatory family, declared before anything runs: self-attention may score up
# to CLIP_MARGIN above TMA, and must be less consistent. Two claims: Bonferroni at 1.25% each,
# decidable from 7 prompts on (the toy profile has 8).
CLAIMS = {
    "mu=0.0": [
        f"clip_score not_above_reference {CLIP_MARGIN}",
        "temporal_consistency below_reference",
    ],
}


# Measured on `toy` (8 prompts x 1 seed; delta [95% t-interval], mu=0 minus mu=0.98).
TOY_JUDGE = (
    "inconclusive on the toy world: the toy judge reads colour and shape, not where the shape "
    "is; self-attention scores clip_score +0.21 [-1.62, +2.03] (margin 1, p adj. 0.34) and "
    "temporal_consistency +0.0051 [-0.0048, +0.0150], on the far side of the claim, with "
    "dynamic degree +2.1 [-1.7, +5.8]"
)


@pytest.mark.ablation(
    "zs2-tma",
    reference="mu=0.98",
    metrics=["clip_score", "temporal_consistency", "dynamic_degree"],
    claims=CLAIMS,
    # The toy world's scene parser sees what the judge misses: whether the shape stays the
    # same one, and motion-compensated flicker (README: The toy world, Position and time).
    metrics_on={"toy": ["identity_constancy", "warping_error", "drift_vs_gap"]},
)
@pytest.mark.parametrize(
    "mu",
    [pytest.param(0.0, marks=pytest.mark.ablation_xfail("toy", reason=TOY_JUDGE)), 0.6, 0.8, 0.98, 1.0],
    ids=lambda mu: f"mu={mu}",
)
def test_tma(mu, zs2, ablation):
    ablation.run(zs2, momentum=mu, noise="two_stage", lam=LAM)
