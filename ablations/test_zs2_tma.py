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

Claim, relative to the reference mu = 0.98: TMA raises temporal consistency over
self-attention, and loses at most CLIP_MARGIN points of CLIP score doing so. The other rows
carry no claim: the paper states none for them.
"""

import pytest

# The noise study's lambda (see test_zs2_noise.py for why 0.1 and not the paper's 0.01).
LAM = 0.1

# CLIP score is on a 0-100 scale where Stable Diffusion 1.5 videos score about 30 and
# published zero-shot methods differ by 0.2 to 1 point: one point is the most TMA may cost.
CLIP_MARGIN = 1.0

TINY_JUDGE = (
    "random weights: TMA acts as designed inside the UNet (consecutive frames' self-attention "
    "outputs become 15-60% more alike in every layer, tests/zs2), but in a random UNet "
    "attention barely shapes the prediction (its frame-to-frame difference moves by under "
    "0.5%, either way), and the random CLIP judge scores every frame pair near 0.998: it "
    "ranks self-attention 2e-5 above the reference. And with 2 prompts no claim can hold "
    "(two claims in one test need 7)"
)

TOY_JUDGE = (
    "the toy judge reads colour and shape, not where the shape is: under the same dependency "
    "noise every momentum draws a near-still video of the prompt's shape, and self-attention "
    "scores +0.001 [-0.009, +0.011] in temporal consistency and +0.64 [-0.72, +1.99] in CLIP "
    "score against mu=0.98. With independent noise TMA does cut optical-flow motion by 16% "
    "while the judge's consistency does not rise: the judge, not TMA, misses it"
)


@pytest.mark.ablation(
    "zs2-tma",
    reference="mu=0.98",
    metrics=["clip_score", "temporal_consistency", "dynamic_degree"],
    # The toy world's scene parser sees what the judge misses: whether the shape stays the
    # same one, and motion-compensated flicker (README: The toy world, Position and time).
    metrics_on={"toy": ["identity_constancy", "warping_error", "drift_vs_gap"]},
)
@pytest.mark.parametrize(
    "mu",
    [
        pytest.param(0.0, marks=[
            pytest.mark.ablation_xfail("tiny", reason=TINY_JUDGE),
            pytest.mark.ablation_xfail("toy", reason=TOY_JUDGE),
        ]),
        0.6,
        0.8,
        0.98,
        1.0,
    ],
    ids=lambda mu: f"mu={mu}",
)
def test_tma(mu, zs2, ablation):
    result = ablation.run(zs2, momentum=mu, noise="two_stage", lam=LAM)
    if mu == 0.0:
        # Self-attention may score up to CLIP_MARGIN above TMA, and must be less consistent.
        ablation.expect(result, "clip_score").not_above_reference(CLIP_MARGIN)
        ablation.expect(result, "temporal_consistency").below_reference()
