"""The extended temporal transformer of an SVD UNet, and ``extend_unet``.

Each ``TransformerSpatioTemporalModel`` of a diffusers ``UNetSpatioTemporalConditionModel``
is patched in place (its class becomes ``ExTransformerSpatioTemporalModel``, a subclass) so
that weights, names and the rest of the UNet stay exactly diffusers'. Two parts change:

- the positional embedding fed to ``time_pos_embed``: the frame ids of a position kind (see
  ``positions``), or for ``trainable`` a learnable table ``time_proj.embeddings
  [max_frames, C]`` indexed by frame. Every kind's ids derive from the UNet's trained length,
  its ``config.num_frames``;
- ``position_conv``, a 3x3x3 ``Conv3d`` over (time, height, width) with reflect padding,
  initialised to the identity, between adding the embedding and the temporal block. Its
  output replaces the activations.

Names added to the UNet's state dict (per temporal transformer): ``time_proj.embeddings``
(``trainable`` only) and ``position_conv.weight`` / ``position_conv.bias`` (with the conv).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from diffusers.models.embeddings import Timesteps
from diffusers.models.transformers.transformer_temporal import (
    TransformerSpatioTemporalModel,
    TransformerTemporalModelOutput,
)
from torch import nn
from torch.utils.checkpoint import checkpoint

from .positions import check_frames, check_position, ping_pong_ids, position_ids, trained_frames


class FramesError(ValueError):
    """More frames than an extended UNet was built for."""


# On a CPU, oneDNN's 3D convolution is slow on the UNet's deepest, smallest feature maps
# (4-10x its arithmetic at 2x2 or 1x1 with 320+ channels); there the same sums as one
# matrix product over the 27 shifted copies are several times faster. With few channels,
# or on larger maps, the convolution wins.
_SMALL_GRID = 16
_WIDE = 256


def _padded_index(n: int, device) -> torch.Tensor:
    """Indices of a length-n axis padded by one: reflected, or replicated when n == 1."""
    i = torch.arange(-1, n + 1, device=device).abs()
    return torch.where(i >= n, 2 * (n - 1) - i, i) if n > 1 else torch.zeros(n + 2, dtype=torch.long, device=device)


class IdentityConv3d(nn.Conv3d):
    """``Conv3d(C, C, 3, padding=1, padding_mode="reflect")``, initialised to the identity.

    Inputs ``(B, C, T, H, W)``. Reflection needs two samples along an axis; along an axis of
    one sample (a single frame, or a 1x1 feature map deep in the UNet) the sample is its own
    mirror, i.e. that axis is padded by replication, which keeps the identity exact there too.
    """

    bias: torch.Tensor  # always made with one (nn.Conv3d's bias=True)

    def __init__(self, channels: int, *, device=None, dtype=None):
        super().__init__(
            channels,
            channels,
            kernel_size=3,
            padding=1,
            padding_mode="reflect",
            device=device,
            dtype=dtype,
        )
        self._matrix: tuple[tuple[int, int, torch.dtype, torch.device], torch.Tensor] | None = None
        self.reset_to_identity()

    @torch.no_grad()
    def reset_to_identity(self) -> None:
        self.weight.zero_()
        self.bias.zero_()
        channels = self.weight.shape[0]
        self.weight[:, :, 1, 1, 1] = torch.eye(channels, device=self.weight.device, dtype=self.weight.dtype)

    def _weight_matrix(self) -> torch.Tensor:
        # (27 C_in, C_out), taps in (t, h, w) order; rebuilt whenever the weight changes.
        if torch.is_grad_enabled() and self.weight.requires_grad:
            return self.weight.permute(2, 3, 4, 1, 0).reshape(-1, self.out_channels)
        w = self.weight
        key = (w.data_ptr(), w._version, w.dtype, w.device)
        if self._matrix is None or self._matrix[0] != key:
            self._matrix = (key, w.detach().permute(2, 3, 4, 1, 0).reshape(-1, self.out_channels).contiguous())
        return self._matrix[1]

    def _as_matmul(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        grid = x.permute(0, 2, 3, 4, 1)  # (B, T, H, W, C): a plain view of the caller's layout
        grid = grid[:, _padded_index(t, x.device)][:, :, _padded_index(h, x.device)][
            :, :, :, _padded_index(w, x.device)
        ]
        taps = torch.stack(
            [grid[:, i : i + t, j : j + h, k : k + w] for i in range(3) for j in range(3) for k in range(3)], dim=-2
        )
        out = torch.addmm(self.bias, taps.reshape(-1, 27 * c), self._weight_matrix())
        return out.view(b, t, h, w, c).permute(0, 4, 1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, h, w = x.shape[-3:]
        if x.device.type == "cpu" and (min(h, w) == 1 or (h * w <= _SMALL_GRID and x.shape[1] >= _WIDE)):
            return self._as_matmul(x)
        # On CUDA, reflect padding's backward accumulates with atomics (nondeterministic);
        # padding by concatenation below pads the same values and has a deterministic
        # backward, so post-tuning gives the same weights run after run.
        if min(t, h, w) >= 2 and not (x.device.type == "cuda" and torch.is_grad_enabled()):
            return super().forward(x)
        for dim in (2, 3, 4):
            n = x.shape[dim]
            x = torch.cat([x.narrow(dim, min(1, n - 1), 1), x, x.narrow(dim, max(n - 2, 0), 1)], dim)
        return F.conv3d(x, self.weight, self.bias)


class PositionTable(nn.Module):
    """ExVideo's trainable positional embedding: one learnable row per frame index."""

    def __init__(self, embeddings: torch.Tensor):
        super().__init__()
        self.embeddings = nn.Parameter(embeddings)

    @property
    def max_frames(self) -> int:
        return self.embeddings.shape[0]

    def forward(self, frame_ids: torch.Tensor) -> torch.Tensor:
        return self.embeddings[frame_ids]


@dataclass(frozen=True)
class ExVideoSettings:
    """How an extended temporal transformer (or a whole UNet) is configured."""

    max_frames: int
    position: str
    identity_conv: bool
    trained_frames: int = 25  # the base UNet's config.num_frames: the ids it knows

    def to_dict(self) -> dict:
        return {
            "max_frames": self.max_frames,
            "position": self.position,
            "identity_conv": self.identity_conv,
            "trained_frames": self.trained_frames,
        }


def _sinusoid_of(module: TransformerSpatioTemporalModel) -> Timesteps:
    # SVD's own sinusoid: Timesteps(in_channels, flip_sin_to_cos=True, shift 0).
    found = module.__dict__.get("_exvideo_sinusoid")
    if found is None:
        found = module.time_proj if isinstance(module.time_proj, Timesteps) else Timesteps(module.in_channels, True, 0)
    return found


class ExTransformerSpatioTemporalModel(TransformerSpatioTemporalModel):
    """A ``TransformerSpatioTemporalModel`` with ExVideo's positional parts (see module doc).

    Not built directly: ``extend_unet`` converts diffusers' modules in place.
    """

    exvideo_max_frames: int
    exvideo_position: str
    exvideo_trained_frames: int
    position_conv: IdentityConv3d | None

    @property
    def exvideo_settings(self) -> ExVideoSettings:
        return ExVideoSettings(
            self.exvideo_max_frames,
            self.exvideo_position,
            self.position_conv is not None,
            self.exvideo_trained_frames,
        )

    def _frame_embedding(self, num_frames: int, batch_size: int, dtype, device) -> torch.Tensor:
        if self.exvideo_position == "trainable":
            ids = torch.arange(num_frames, device=device)  # the table is indexed by frame
        else:
            ids = position_ids(self.exvideo_position, num_frames, self.exvideo_trained_frames).to(device)
        # The same (batch x frames) rows as diffusers feeds time_pos_embed, so that the
        # result is bitwise SVD's wherever the ids agree.
        ids = ids.repeat(batch_size, 1).reshape(-1)
        t_emb = self.time_proj(ids).to(dtype=dtype)
        return self.time_pos_embed(t_emb)[:, None, :]

    def _mix(self, hidden_states, emb, temporal_block, num_frames, height, width, time_context):
        hidden_states = hidden_states + emb
        if self.position_conv is not None:
            batch_frames, tokens, channels = hidden_states.shape
            grid = hidden_states.reshape(batch_frames // num_frames, num_frames, height, width, channels)
            # (B, C, T, H, W) as a channels-last view: no copy on the way in or out.
            grid = self.position_conv(grid.permute(0, 4, 1, 2, 3))
            hidden_states = grid.permute(0, 2, 3, 4, 1).reshape(batch_frames, tokens, channels)
        return temporal_block(hidden_states, num_frames=num_frames, encoder_hidden_states=time_context)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        image_only_indicator: torch.Tensor | None = None,
        return_dict: bool = True,
    ):
        batch_frames, _, height, width = hidden_states.shape
        assert image_only_indicator is not None  # the SVD UNet always passes it
        num_frames = image_only_indicator.shape[-1]
        if num_frames > self.exvideo_max_frames:
            raise FramesError(
                f"num_frames: got {num_frames}; this ExVideo UNet was extended to "
                f"max_frames={self.exvideo_max_frames} (extend_unet(unet, max_frames=...) to go further)"
            )
        batch_size = batch_frames // num_frames

        # Temporal cross-attention reads the first frame's image embedding at every pixel.
        assert encoder_hidden_states is not None  # the SVD UNet always passes it
        context = encoder_hidden_states[None, :].reshape(batch_size, num_frames, -1, encoder_hidden_states.shape[-1])[
            :, 0
        ]
        time_context = context[:, None].broadcast_to(batch_size, height * width, context.shape[-2], context.shape[-1])
        time_context = time_context.reshape(batch_size * height * width, -1, context.shape[-1])

        residual = hidden_states
        hidden_states = self.norm(hidden_states)
        inner_dim = hidden_states.shape[1]
        hidden_states = hidden_states.permute(0, 2, 3, 1).reshape(batch_frames, height * width, inner_dim)
        hidden_states = self.proj_in(hidden_states)

        emb = self._frame_embedding(num_frames, batch_size, hidden_states.dtype, hidden_states.device)
        recompute = torch.is_grad_enabled() and self.gradient_checkpointing
        for block, temporal_block in zip(self.transformer_blocks, self.temporal_transformer_blocks):
            if recompute:
                hidden_states = checkpoint(block, hidden_states, None, encoder_hidden_states, use_reentrant=False)
                mixed = checkpoint(
                    self._mix,
                    hidden_states,
                    emb,
                    temporal_block,
                    num_frames,
                    height,
                    width,
                    time_context,
                    use_reentrant=False,
                )
            else:
                hidden_states = block(hidden_states, encoder_hidden_states=encoder_hidden_states)
                mixed = self._mix(hidden_states, emb, temporal_block, num_frames, height, width, time_context)
            hidden_states = self.time_mixer(
                x_spatial=hidden_states, x_temporal=mixed, image_only_indicator=image_only_indicator
            )

        hidden_states = self.proj_out(hidden_states)
        hidden_states = hidden_states.reshape(batch_frames, height, width, inner_dim).permute(0, 3, 1, 2).contiguous()
        output = hidden_states + residual
        if not return_dict:
            return (output,)
        return TransformerTemporalModelOutput(sample=output)


def temporal_transformers(unet: nn.Module) -> list[tuple[str, TransformerSpatioTemporalModel]]:
    """The UNet's temporal transformers by name, in module order."""
    found = [(n, m) for n, m in unet.named_modules() if isinstance(m, TransformerSpatioTemporalModel)]
    if not found:
        raise ValueError(
            f"unet: {type(unet).__name__} has no TransformerSpatioTemporalModel; expected a "
            "diffusers UNetSpatioTemporalConditionModel (Stable Video Diffusion)"
        )
    return found


def _reference_parameter(module: TransformerSpatioTemporalModel) -> torch.Tensor:
    return module.time_pos_embed.linear_1.weight


def _sinusoid_table(module, frames: int, first: int = 0) -> torch.Tensor:
    ref = _reference_parameter(module)
    ids = ping_pong_ids(frames, module.exvideo_trained_frames)[first:].to(ref.device)
    return _sinusoid_of(module)(ids).to(dtype=ref.dtype)


def _configure_position(module, max_frames: int, position: str) -> None:
    ref = _reference_parameter(module)
    current = module.time_proj
    if position != "trainable":
        if isinstance(current, PositionTable):
            module.time_proj = _sinusoid_of(module)
        return
    if isinstance(current, PositionTable):
        rows = current.max_frames
        if rows == max_frames:
            return
        with torch.no_grad():
            if rows > max_frames:
                table = current.embeddings[:max_frames].detach().clone()
            else:
                # Rows already there may be trained: keep them, and start the new ones as SVD.
                table = torch.cat([current.embeddings.detach(), _sinusoid_table(module, max_frames, rows)])
    else:
        with torch.no_grad():
            table = _sinusoid_table(module, max_frames)
    table_module = PositionTable(table)
    table_module.embeddings.requires_grad_(ref.requires_grad)
    module.time_proj = table_module


def _configure_conv(module, identity_conv: bool) -> None:
    present = getattr(module, "position_conv", None)
    if not identity_conv:
        module.position_conv = None
        return
    if present is None:
        ref = _reference_parameter(module)
        conv = IdentityConv3d(module.inner_dim, device=ref.device, dtype=ref.dtype)
        conv.requires_grad_(ref.requires_grad)
        module.position_conv = conv


def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: got {value!r}; expected True or False")
    return value


def extend_unet(unet: nn.Module, max_frames: int, position: str = "trainable", identity_conv: bool = True):
    """Give every temporal transformer of an SVD UNet ExVideo's parts, in place; returns it.

    Every kind's ids derive from the UNet's trained length, ``unet.config.num_frames`` (25
    for SVD-XT; ``positions.trained_frames``). At initialisation every kind leaves the UNet's
    output exactly unchanged up to that many frames, ``static`` for any number, with or
    without the identity convolution. Calling it again on an extended UNet
    reconfigures it: a trained table is kept (cut or grown with SVD's rows) while the kind
    stays ``trainable`` and dropped otherwise; ``identity_conv=False`` removes a
    convolution, ``True`` keeps a trained one or adds an identity one.
    """
    check_position(position)
    check_frames(max_frames, "max_frames")
    _check_bool(identity_conv, "identity_conv")
    trained = trained_frames(unet)
    # Its class is changed in place below, and ExVideo's attributes set on it.
    module: Any
    for _, module in temporal_transformers(unet):
        if not isinstance(module, ExTransformerSpatioTemporalModel):
            module.__dict__["_exvideo_sinusoid"] = module.time_proj
            module.position_conv = None
            module.__class__ = ExTransformerSpatioTemporalModel
        module.exvideo_trained_frames = trained
        _configure_position(module, max_frames, position)
        _configure_conv(module, identity_conv)
        module.exvideo_max_frames = max_frames
        module.exvideo_position = position
    return unet


def extended_transformers(unet: nn.Module) -> list[tuple[str, ExTransformerSpatioTemporalModel]]:
    found = temporal_transformers(unet)
    plain = [name for name, m in found if not isinstance(m, ExTransformerSpatioTemporalModel)]
    if plain:
        raise ValueError(
            f"unet: temporal transformer(s) {', '.join(plain)} are not extended; call "
            "extend_unet(unet, max_frames, ...) first"
        )
    return found  # type: ignore[return-value]


def is_extended(unet: nn.Module) -> bool:
    try:
        extended_transformers(unet)
    except ValueError:
        return False
    return True


def exvideo_settings(unet: nn.Module) -> ExVideoSettings:
    """The UNet's ExVideo configuration (all its temporal transformers share it)."""
    settings = {m.exvideo_settings for _, m in extended_transformers(unet)}
    if len(settings) != 1:
        raise ValueError(f"unet: its temporal transformers are configured differently: {sorted(map(str, settings))}")
    return settings.pop()


def exvideo_parameter_names(unet: nn.Module) -> list[str]:
    """The parameters ExVideo post-tunes: every temporal transformer block, the position
    MLP, and the new parts (trainable table, identity convolution). Nothing else."""
    names: list[str] = []
    for prefix, module in extended_transformers(unet):
        for sub in ("time_proj", "position_conv", "time_pos_embed", "temporal_transformer_blocks"):
            part = getattr(module, sub, None)
            if isinstance(part, nn.Module):
                names.extend(f"{prefix}.{sub}.{n}" for n, _ in part.named_parameters())
    return names


# The two parts ExVideo adds, by the sub-module of a temporal transformer that holds each:
# post_tune can give either its own learning rate (``part_lr``).
NEW_PART_MODULES = {"table": "time_proj", "conv": "position_conv"}


def exvideo_part(name: str) -> str | None:
    """The new part (``"table"`` or ``"conv"``) a post-tuned parameter belongs to, or None
    for the rest (temporal transformer blocks, position MLP)."""
    for part, module in NEW_PART_MODULES.items():
        if f".{module}." in f".{name}":
            return part
    return None


def exvideo_parameters(unet: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    wanted = set(exvideo_parameter_names(unet))
    return ((n, p) for n, p in unet.named_parameters() if n in wanted)


def exvideo_state_dict(unet: nn.Module) -> dict[str, torch.Tensor]:
    """The post-tuned part of an extended UNet, by diffusers name (detached CPU copies)."""
    return {n: p.detach().to("cpu", copy=True) for n, p in exvideo_parameters(unet)}


def load_exvideo_state_dict(unet: nn.Module, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Copy an ExVideo state dict into an extended UNet: exactly its ExVideo names and shapes."""
    params = dict(exvideo_parameters(unet))
    missing = sorted(set(params) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(params))
    wrong = sorted(
        f"{n}: got {tuple(state_dict[n].shape)}, expected {tuple(params[n].shape)}"
        for n in set(params) & set(state_dict)
        if tuple(state_dict[n].shape) != tuple(params[n].shape)
    )
    if missing or unexpected or wrong:
        raise ValueError(
            "ExVideo state dict does not fit this UNet (check max_frames, position and "
            "identity_conv):"
            + _listing("missing", missing)
            + _listing("unexpected", unexpected)
            + _listing("mis-shaped", wrong)
        )
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(state_dict[name].to(device=param.device, dtype=param.dtype))
    return unet


def _listing(what: str, names: list[str], limit: int = 40) -> str:
    if not names:
        return ""
    shown = names[:limit]
    more = f"\n    ... and {len(names) - limit} more" if len(names) > limit else ""
    return f"\n  {what} ({len(names)}):\n    " + "\n    ".join(shown) + more
