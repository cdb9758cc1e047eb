"""Builders shared by the ZS² tests."""

from __future__ import annotations

import torch


def make_attention(heads: int, head_dim: int, *, seed: int = 0, **options):
    """A diffusers self-attention layer with seeded random weights, in eval mode."""
    from diffusers.models.attention_processor import Attention

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        attn = Attention(query_dim=heads * head_dim, heads=heads, dim_head=head_dim, **options)
    return attn.eval().requires_grad_(False)


def frames_batch(branches: int, frames: int, tokens: int, channels: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(branches * frames, tokens, channels, generator=generator)
