"""How close two float32 evaluations of the same function must be.

Two models with bit-identical weights can still disagree in the last bits: a model loaded
from disk may hold its tensors in another memory layout than the one built in memory, and
the kernel then sums in another order. Each float32 operation rounds to within one part in
2**24 (6e-8); through the few dozen layers of a toy network that stays several orders of
magnitude below 1e-5 of the output's scale, while any change of weights moves the output
by a sizeable fraction of its scale. So 1e-5 of the scale separates "same function" from
"another function" with room on both sides.
"""

import torch

SAME_FUNCTION_RTOL = 1e-5


def assert_same_function_output(actual: torch.Tensor, expected: torch.Tensor, what: str = "") -> None:
    scale = float(expected.detach().abs().max()) or 1.0
    torch.testing.assert_close(
        actual, expected, rtol=SAME_FUNCTION_RTOL, atol=SAME_FUNCTION_RTOL * scale, msg=lambda m: f"{what}: {m}"
    )


def assert_other_function_output(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """The outputs differ by far more than evaluation order could explain."""
    scale = float(expected.detach().abs().max()) or 1.0
    assert float((actual - expected).abs().max()) > 100 * SAME_FUNCTION_RTOL * scale


def summation_error_bound(inputs: torch.Tensor, weight: torch.Tensor, bias=None) -> torch.Tensor:
    """The classic bound on the rounding error of ``inputs @ weight.T + bias`` in float32:
    ``n * eps * (|inputs| @ |weight|.T + |bias|)`` for sums of ``n`` terms (Higham, gamma_n)."""
    n = inputs.shape[-1] + (bias is not None)
    eps = torch.finfo(torch.float32).eps
    magnitude = inputs.detach().abs() @ weight.detach().abs().T
    if bias is not None:
        magnitude = magnitude + bias.detach().abs()
    return n * eps * magnitude


# Videos are kept as 8-bit frames: a quarter of one level is invisible, and flips a stored
# value only where it lay within a quarter level of a rounding boundary. The diffusion loop
# (EDM latents scaled by sigma ~ 700, group norms over small maps) magnifies float rounding
# far above an op's own, but keeps it far below that; another seed moves whole levels.
VIDEO_ATOL = 0.25 / 255


def assert_same_video(actual: torch.Tensor, expected: torch.Tensor, what: str = "") -> None:
    torch.testing.assert_close(actual, expected, rtol=0, atol=VIDEO_ATOL, msg=lambda m: f"{what}: {m}")


def assert_other_video(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert float((actual - expected).abs().max()) > 10 * VIDEO_ATOL
