"""The guided-diffusion (ADM) UNet of Dhariwal & Nichol 2021, to run checkpoints users have.

Module names and shapes follow openai/guided-diffusion's ``UNetModel`` so its
``.pt`` state dicts (e.g. ``256x256_diffusion_uncond.pt``) load with
``load_state_dict`` directly; written from the paper's description and the
checkpoint layout (timestep embedding MLP, ResBlocks with GroupNorm(32) and
optional scale-shift conditioning, legacy-order QKV attention, optional
up/down-sampling ResBlocks).  :func:`adm_config_from_state_dict` recovers the
architecture from a state dict; only the head width (``num_head_channels``,
64 for the released models) is not stored in the weights.

``forward(x, t)`` returns all output channels (``2 C`` when the model learned
its variance); the prior wrapper keeps the first ``C`` (epsilon).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ADMUNet", "adm_config_from_state_dict", "timestep_embedding"]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding (N, dim): ``[cos(t f_k), sin(t f_k)]``, ``f_k = max_period^(-k / half)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class _GroupNorm32(nn.GroupNorm):
    def forward(self, x):  # computed in float32, as the checkpoints were trained
        return super().forward(x.float()).type(x.dtype)


def _norm(ch: int) -> nn.GroupNorm:
    return _GroupNorm32(32, ch)


class _Down(nn.Module):
    def __init__(self, ch: int, use_conv: bool, out_ch: int | None = None):
        super().__init__()
        self.use_conv = use_conv
        if use_conv:
            self.op = nn.Conv2d(ch, out_ch or ch, 3, stride=2, padding=1)

    def forward(self, x):
        return self.op(x) if self.use_conv else F.avg_pool2d(x, 2)


class _Up(nn.Module):
    def __init__(self, ch: int, use_conv: bool, out_ch: int | None = None):
        super().__init__()
        self.use_conv = use_conv
        if use_conv:
            self.conv = nn.Conv2d(ch, out_ch or ch, 3, padding=1)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x


class _ResBlock(nn.Module):
    def __init__(self, ch: int, emb_ch: int, out_ch: int, scale_shift: bool, up: bool = False, down: bool = False):
        super().__init__()
        self.in_layers = nn.Sequential(_norm(ch), nn.SiLU(), nn.Conv2d(ch, out_ch, 3, padding=1))
        self.updown = up or down
        self.h_upd = _Up(ch, False) if up else _Down(ch, False) if down else nn.Identity()
        self.x_upd = _Up(ch, False) if up else _Down(ch, False) if down else nn.Identity()
        self.scale_shift = scale_shift
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_ch, 2 * out_ch if scale_shift else out_ch))
        self.out_layers = nn.Sequential(_norm(out_ch), nn.SiLU(), nn.Dropout(0.0), nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip_connection = nn.Identity() if out_ch == ch else nn.Conv2d(ch, out_ch, 1)

    def forward(self, x, emb):
        if self.updown:
            h = self.in_layers[:-1](x)
            h = self.in_layers[-1](self.h_upd(h))
            x = self.x_upd(x)
        else:
            h = self.in_layers(x)
        e = self.emb_layers(emb).type(h.dtype)[..., None, None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + e)
        return self.skip_connection(x) + h


class _Attention(nn.Module):
    def __init__(self, ch: int, num_head_channels: int):
        super().__init__()
        self.heads = max(1, ch // num_head_channels) if num_head_channels > 0 else 1
        self.norm = _norm(ch)
        self.qkv = nn.Conv1d(ch, 3 * ch, 1)
        self.proj_out = nn.Conv1d(ch, ch, 1)

    def forward(self, x, emb=None):
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(x))
        n = qkv.shape[-1]
        d = c // self.heads
        q, k, v = qkv.reshape(b * self.heads, 3 * d, n).split(d, dim=1)  # legacy head order
        scale = d ** -0.25
        w = torch.softmax(torch.einsum("bct,bcs->bts", q * scale, k * scale).float(), dim=-1).type(q.dtype)
        h = torch.einsum("bts,bcs->bct", w, v).reshape(b, c, n)
        return (x + self.proj_out(h)).reshape(b, c, *spatial)


class _Seq(nn.ModuleList):
    def forward(self, x, emb):
        for m in self:
            x = m(x, emb) if isinstance(m, (_ResBlock, _Attention)) else m(x)
        return x


class ADMUNet(nn.Module):
    """guided-diffusion's ``UNetModel`` (unconditional), same parameter names.

    Args:
        in_channels, model_channels, out_channels, num_res_blocks: as in guided-diffusion.
        attention_ds: downsampling rates with self-attention (``image_size // r`` for each
            ``attention_resolutions`` entry r).
        channel_mult: width multipliers per level.
        num_head_channels: channels per attention head.
        use_scale_shift_norm, resblock_updown, conv_resample: as in guided-diffusion.
    """

    def __init__(self, in_channels=3, model_channels=128, out_channels=3, num_res_blocks=2,
                 attention_ds=(), channel_mult=(1, 2, 2, 2), num_head_channels=64,
                 use_scale_shift_norm=True, resblock_updown=True, conv_resample=True):
        super().__init__()
        mc, emb = model_channels, 4 * model_channels
        self.cfg = dict(in_channels=in_channels, model_channels=mc, out_channels=out_channels,
                        num_res_blocks=num_res_blocks, attention_ds=sorted(int(a) for a in attention_ds),
                        channel_mult=[int(m) for m in channel_mult], num_head_channels=num_head_channels,
                        use_scale_shift_norm=use_scale_shift_norm, resblock_updown=resblock_updown,
                        conv_resample=conv_resample)
        self.time_embed = nn.Sequential(nn.Linear(mc, emb), nn.SiLU(), nn.Linear(emb, emb))
        ch = mc
        self.input_blocks = nn.ModuleList([_Seq([nn.Conv2d(in_channels, ch, 3, padding=1)])])
        chans, ds = [ch], 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers: list[nn.Module] = [_ResBlock(ch, emb, mult * mc, use_scale_shift_norm)]
                ch = mult * mc
                if ds in attention_ds:
                    layers.append(_Attention(ch, num_head_channels))
                self.input_blocks.append(_Seq(layers))
                chans.append(ch)
            if level != len(channel_mult) - 1:
                down = (_ResBlock(ch, emb, ch, use_scale_shift_norm, down=True) if resblock_updown
                        else _Down(ch, conv_resample, ch))
                self.input_blocks.append(_Seq([down]))
                chans.append(ch)
                ds *= 2
        self.middle_block = _Seq([_ResBlock(ch, emb, ch, use_scale_shift_norm), _Attention(ch, num_head_channels),
                                  _ResBlock(ch, emb, ch, use_scale_shift_norm)])
        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(num_res_blocks + 1):
                layers = [_ResBlock(ch + chans.pop(), emb, mc * mult, use_scale_shift_norm)]
                ch = mc * mult
                if ds in attention_ds:
                    layers.append(_Attention(ch, num_head_channels))
                if level and i == num_res_blocks:
                    layers.append(_ResBlock(ch, emb, ch, use_scale_shift_norm, up=True) if resblock_updown
                                  else _Up(ch, conv_resample, ch))
                    ds //= 2
                self.output_blocks.append(_Seq(layers))
        self.out = nn.Sequential(_norm(ch), nn.SiLU(), nn.Conv2d(ch, out_channels, 3, padding=1))

    @property
    def multiple(self) -> int:
        return 2 ** (len(self.cfg["channel_mult"]) - 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """All output channels, (N, out_channels, H, W); ``t`` integer timesteps (N,)."""
        emb = self.time_embed(timestep_embedding(t, self.cfg["model_channels"]))
        hs, h = [], x
        for block in self.input_blocks:
            h = block(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)


def adm_config_from_state_dict(state: dict, *, num_head_channels: int = 64) -> dict:
    """``ADMUNet`` keyword arguments recovered from a guided-diffusion state dict."""
    try:
        w0 = state["input_blocks.0.0.weight"]
        out_w = state["out.2.weight"]
    except KeyError as e:
        raise ValueError(f"not a guided-diffusion UNet state dict (missing {e})") from None
    in_ch, out_ch = w0.shape[1], out_w.shape[0]
    mc = state["time_embed.0.weight"].shape[1] if "time_embed.0.weight" in state else w0.shape[0]

    def block_keys(prefix, i):
        p = f"{prefix}.{i}."
        return {k[len(p):] for k in state if k.startswith(p)}

    n_out = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("output_blocks."))
    # the first output block that ends with an upsampler marks num_res_blocks + 1 blocks per level
    nrb = None
    for i in range(n_out):
        subs = {k.split(".")[0] for k in block_keys("output_blocks", i)}
        last = max(int(s) for s in subs)
        keys = block_keys("output_blocks", i)
        if last > 0 and (f"{last}.conv.weight" in keys or f"{last}.in_layers.0.weight" in keys):
            nrb = i
            break
    levels = n_out // (nrb + 1) if nrb is not None else 1
    nrb = nrb if nrb is not None else n_out - 1
    mult, attn, updown, ds, idx = [], [], False, 1, 1
    for level in range(levels):
        for _ in range(nrb):
            keys = block_keys("input_blocks", idx)
            if f"0.out_layers.3.weight" in keys:
                ch = state[f"input_blocks.{idx}.0.out_layers.3.weight"].shape[0]
            if "1.qkv.weight" in keys and ds not in attn:
                attn.append(ds)
            idx += 1
        mult.append(ch // mc)
        if level != levels - 1:
            keys = block_keys("input_blocks", idx)
            updown = "0.in_layers.0.weight" in keys
            idx += 1
            ds *= 2
    emb_w = state["input_blocks.1.0.emb_layers.1.weight"]
    scale_shift = emb_w.shape[0] == 2 * state["input_blocks.1.0.out_layers.3.weight"].shape[0]
    conv_resample = updown or any(k.endswith(".op.weight") for k in state)
    return dict(in_channels=in_ch, model_channels=mc, out_channels=out_ch, num_res_blocks=nrb,
                attention_ds=attn, channel_mult=mult, num_head_channels=num_head_channels,
                use_scale_shift_norm=scale_shift, resblock_updown=updown, conv_resample=conv_resample)
