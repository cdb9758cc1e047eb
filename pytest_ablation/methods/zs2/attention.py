"""Temporal Momentum Attention (TMA): self-attention whose keys and values are a running
momentum over the frames of a video.

For frame ``k`` the keys become ``K~_0 = K_0`` and ``K~_k = mu * K~_(k-1) + (1 - mu) * K_k``
(values alike); queries stay per frame. Unrolled, ``K~ = W @ K`` over the frame axis with the
lower-triangular matrix ``W[k, 0] = mu^k`` and ``W[k, j] = (1 - mu) * mu^(k - j)`` for
``1 <= j <= k``: every row is a convex combination of the frames up to ``k``. ``mu = 0`` is
per-frame self-attention, ``mu = 1`` Text2Video-Zero's cross-frame attention (every frame
attends to frame 0).

The processor expects the UNet batch to be ``branches x num_frames`` with the frames of a
branch contiguous (classifier-free guidance gives two branches); the momentum runs inside a
branch and never across branches.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from numbers import Real
from typing import Any

import torch
import torch.nn.functional as F

from pytest_ablation.metrics.validation import check_frames

__all__ = [
    "TemporalMomentumAttnProcessor",
    "install_tma",
    "momentum_weights",
    "self_attention_names",
    "tma_installed",
]


def check_real(value: Any, where: str, allowed: str) -> float:
    """``value`` as a float; TypeError naming ``where`` and what is ``allowed`` for anything
    that is not a real number (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{where} must be {allowed}, got {value!r}")
    return float(value)


def check_momentum(momentum: Any, where: str = "momentum") -> float:
    value = check_real(momentum, where, "a number in [0, 1]")
    if not (0.0 <= value <= 1.0):  # also refuses NaN
        raise ValueError(f"{where} must be in [0, 1] (0: self-attention, 1: cross-frame attention), got {momentum!r}")
    return value


def momentum_weights(
    momentum: float,
    num_frames: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The ``(F, F)`` matrix ``W`` with ``K~ = W @ K`` over frames; each row sums to 1."""
    mu = check_momentum(momentum)
    frames = check_frames(num_frames)
    # Built in float64: mu^k for k up to a few hundred frames loses digits in float32 when
    # mu is close to 1, and the rows must stay convex after the cast.
    k = torch.arange(frames, dtype=torch.float64)
    lag = k[:, None] - k[None, :]
    weights = torch.where(
        lag >= 0,
        (1.0 - mu) * torch.pow(torch.tensor(mu, dtype=torch.float64), lag.clamp(min=0)),
        torch.zeros((), dtype=torch.float64),
    )
    # Frame 0 starts the recursion (K~_0 = K_0), so its column carries mu^k, not (1-mu) mu^k.
    weights[:, 0] = torch.pow(torch.tensor(mu, dtype=torch.float64), k)
    return weights.to(dtype=dtype, device=device)


class TemporalMomentumAttnProcessor:
    """A diffusers attention processor for self-attention layers (``attn1``).

    ``momentum`` in [0, 1]; ``num_frames`` the frames per branch of the UNet batch. Calls with
    ``encoder_hidden_states`` (cross-attention) are plain scaled-dot-product attention, so
    setting this processor on a cross-attention layer changes nothing.
    """

    def __init__(self, momentum: float, num_frames: int):
        self.momentum = check_momentum(momentum)
        self.num_frames = check_frames(num_frames)
        self._weights: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(momentum={self.momentum}, num_frames={self.num_frames})"

    def weights(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        key = (dtype, device)
        if key not in self._weights:
            self._weights[key] = momentum_weights(self.momentum, self.num_frames, dtype=dtype, device=device)
        return self._weights[key]

    def mix(self, states: torch.Tensor) -> torch.Tensor:
        """Apply the momentum over frames to ``(branches * frames, ...)`` states."""
        batch = states.shape[0]
        frames = self.num_frames
        if batch % frames:
            raise ValueError(
                f"TemporalMomentumAttnProcessor: a batch of {batch} is not divisible by "
                f"num_frames={frames}; the UNet batch must be branches x num_frames with "
                "the frames of each branch contiguous"
            )
        shape = states.shape
        # One matmul over the frame axis for every branch, token and channel at once.
        grouped = states.reshape(batch // frames, frames, -1)
        mixed = torch.matmul(self.weights(states.dtype, states.device), grouped)
        return mixed.reshape(shape)

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> torch.Tensor:
        # The steps of diffusers' AttnProcessor2_0, so that momentum 0 reproduces it on any
        # Attention module, with the momentum applied to the projected keys and values.
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)

        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)

        batch_size, sequence_length, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        )
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
            attention_mask = attention_mask.view(batch_size, attn.heads, -1, attention_mask.shape[-1])

        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query = attn.to_q(hidden_states)

        self_attention = encoder_hidden_states is None
        if self_attention:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)

        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        if self_attention:
            key = self.mix(key)
            value = self.mix(value)

        inner_dim = key.shape[-1]
        head_dim = inner_dim // attn.heads
        query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)

        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        hidden_states = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False
        )
        hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
        hidden_states = hidden_states.to(query.dtype)

        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)

        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def self_attention_names(unet: Any) -> list[str]:
    """Names (as in ``unet.attn_processors``) of the self-attention layers, ``*.attn1``."""
    if not hasattr(unet, "attn_processors"):
        raise TypeError(f"install_tma needs a diffusers model with attention processors, got {type(unet).__name__}")
    return [name for name in unet.attn_processors if name.endswith("attn1.processor")]


def install_tma(unet: Any, momentum: float, num_frames: int) -> Any:
    """Set a ``TemporalMomentumAttnProcessor`` on every ``attn1`` of ``unet``; keep the others.

    Returns ``unet``. Every call on the UNet must then carry a batch of
    ``branches x num_frames`` frames. ``tma_installed`` undoes it on exit.
    """
    processor = TemporalMomentumAttnProcessor(momentum, num_frames)
    names = self_attention_names(unet)
    if not names:
        raise ValueError(f"{type(unet).__name__} has no self-attention layer (attn1) to set TMA on")
    processors = dict(unet.attn_processors)
    for name in names:
        processors[name] = processor
    unet.set_attn_processor(processors)
    return unet


@contextlib.contextmanager
def tma_installed(unet: Any, momentum: float, num_frames: int) -> Iterator[Any]:
    """``install_tma`` for the duration of a ``with`` block; the previous processors return."""
    previous = dict(unet.attn_processors)
    install_tma(unet, momentum, num_frames)
    try:
        yield unet
    finally:
        # set_attn_processor consumes the dict it is given.
        unet.set_attn_processor(dict(previous))
