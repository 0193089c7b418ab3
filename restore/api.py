"""Library entry points: :func:`load` a model, :func:`denoise` an array.

    >>> import restore
    >>> x = restore.denoise(y, noise="gaussian:25")          # doctest: +SKIP
    >>> x = restore.denoise(rgb, channel_axis=-1)            # sigma estimated  # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from restore.methods import Method, get_method
from restore.nets import build_net
from restore.noise import Gaussian, NoiseModel, estimate_sigma, make_noise
from restore.tiling import tiled_apply
from restore.train.checkpoint import read_model
from restore.weights import default_weights

#: Default tiling: the network's receptive field is large, so tiles overlap
#: generously and are blended with a Hann window (seamless; not bit-exact).
DEFAULT_TILE = 512
DEFAULT_OVERLAP = 64


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but no CUDA device is available; use --device cpu")
    return device


@dataclass
class Restorer:
    """A trained method ready for inference: ``restorer(y, sigma) -> x_hat``.

    ``y`` is ``(N, C, H, W)`` float32 in [0, 1] with ``C == channels``;
    ``sigma`` is ``(N,)`` in [0, 1] units.  Use :meth:`run` for images of any
    size (tiled).
    """

    method: Method
    net: nn.Module
    meta: dict = field(default_factory=dict)
    device: torch.device = torch.device("cpu")

    @property
    def channels(self) -> int:
        return int(self.net.channels)

    @property
    def multiple(self) -> int:
        return int(getattr(self.net, "multiple", 1))

    def __call__(self, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cpu":
            y = y.contiguous(memory_format=torch.channels_last)
        return self.method.restore(self.net, y, sigma.reshape(-1).type_as(y))

    def run(self, y: torch.Tensor | np.ndarray, sigma: float, *, tile: int | None = DEFAULT_TILE,
            overlap: int = DEFAULT_OVERLAP, batch_size: int = 4, progress=None):
        """Restore one image ``(C, H, W)`` (tensor or numpy/memmap) tile by tile."""

        def fn(batch: torch.Tensor) -> torch.Tensor:
            s = torch.full((batch.shape[0],), float(sigma), dtype=batch.dtype, device=batch.device)
            return self(batch, s)

        return tiled_apply(fn, y, tile=tile, overlap=overlap, window="hann", batch_size=batch_size,
                           multiple=self.multiple, device=self.device, progress=progress)


def load(model: str | Path | None = None, *, channels: int = 1, method: str = "default",
         device: str | torch.device | None = "auto") -> Restorer:
    """Load a model file (``.safetensors`` from ``restore train``) or a shipped default.

    ``model=None`` picks the shipped default for ``channels`` (1 grey, 3 colour)
    and ``method`` (``"default"`` = the best measured one).
    """
    path = Path(model) if model is not None else default_weights(method, channels)
    state, meta = read_model(path)
    net = build_net(meta["net"])
    net.load_state_dict(state)
    dev = resolve_device(device)
    net = net.to(dev).eval()
    if dev.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    m = get_method(meta["method"], **meta.get("method_params", {}))
    return Restorer(method=m, net=net, meta=meta, device=dev)


def parse_noise(noise: str | float | NoiseModel | None) -> NoiseModel | None:
    """``None``/``"auto"`` -> None (estimate); a float -> Gaussian sigma (>1 means /255)."""
    if noise is None or (isinstance(noise, str) and noise in ("auto", "gaussian")):
        return None
    if isinstance(noise, NoiseModel):
        return noise
    if isinstance(noise, (int, float)):
        return Gaussian(noise / 255.0 if noise > 1 else noise)
    return make_noise(noise)


def gaussian_sigma(y_chw: torch.Tensor, noise: NoiseModel | None) -> float:
    """The Gaussian sigma to use for ``y`` (C, H, W): given, or estimated (wavelet MAD)."""
    if noise is None:
        return float(estimate_sigma(y_chw[None])[0])
    if not isinstance(noise, Gaussian):
        raise NotImplementedError(
            f"{type(noise).__name__} noise is not supported by the shipped Gaussian models yet; use gaussian[:SIGMA]")
    return float(noise.sigma.reshape(-1)[0])


_CACHE: dict[tuple, Restorer] = {}


def _cached_load(model, channels, method, device) -> Restorer:
    key = (str(model), channels, method, str(device))
    if key not in _CACHE:
        _CACHE[key] = load(model, channels=channels, method=method, device=device)
    return _CACHE[key]


def denoise_chw(y: torch.Tensor, *, noise=None, method: str = "default", model=None, device="auto",
                tile: int | None = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, progress=None
                ) -> tuple[torch.Tensor, float]:
    """Denoise a float ``(C, H, W)`` tensor in [0, 1]; returns ``(x_hat, sigma)``.

    Colour images use the colour model when one is shipped (or given);
    a grey model is applied channel by channel otherwise.
    """
    c = y.shape[0]
    sigma = gaussian_sigma(y, parse_noise(noise))
    want = 3 if c == 3 else 1
    try:
        r = _cached_load(model, want, method, device)
    except FileNotFoundError:
        if want == 1 or model is not None:
            raise
        r = _cached_load(model, 1, method, device)
    if r.channels == c:
        out = r.run(y, sigma, tile=tile, overlap=overlap, progress=progress)
    elif r.channels == 1:
        out = torch.cat([torch.as_tensor(r.run(y[i : i + 1], sigma, tile=tile, overlap=overlap))
                         for i in range(c)])
    else:
        raise ValueError(f"the model expects {r.channels} channels but the image has {c}")
    return torch.as_tensor(out).clamp_(0, 1), sigma


def denoise(image, *, noise="auto", method: str = "default", model=None, channel_axis: int | None = None,
            device="auto", tile: int | None = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP):
    """Denoise an image; returns the same type, dtype and shape as ``image``.

    Args:
        image: NumPy array or torch tensor.  2-D arrays are grey.  With
            ``channel_axis`` given, that axis holds 1 or 3 channels (e.g. -1
            for ``(H, W, C)``); tensors default to ``(C, H, W)`` /
            ``(N, C, H, W)`` (``channel_axis=-3``).  Integer dtypes are read
            as 8/16-bit intensities; floats are taken as [0, 1].
        noise: ``"auto"`` (estimate sigma per image), ``"gaussian:25"``
            (sigma in 8-bit units when > 1), a float, or a NoiseModel.
        method: which shipped model family (``"default"``).
        model: path to a ``.safetensors`` model from ``restore train``.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        tile, overlap: tiled inference (pixels); memory is bounded by the tile.
    """
    is_tensor = isinstance(image, torch.Tensor)
    arr = image.detach().cpu().numpy() if is_tensor else np.asarray(image)
    if is_tensor and channel_axis is None and arr.ndim >= 3:
        channel_axis = -3
    dtype = arr.dtype
    if arr.ndim == 2:
        if channel_axis is not None:
            raise ValueError("a 2-D image has no channel axis; pass channel_axis=None")
        work = arr[None, None]
    elif channel_axis is None:
        raise ValueError(f"image of shape {arr.shape}: pass channel_axis (e.g. channel_axis=-1 for (H, W, C))")
    else:
        work = np.moveaxis(arr, channel_axis, -3)
        work = work.reshape(-1, *work.shape[-3:])
    if np.issubdtype(dtype, np.integer):
        scale = float(np.iinfo(dtype).max)
    elif np.issubdtype(dtype, np.floating):
        scale = 1.0
    else:
        raise TypeError(f"unsupported image dtype {dtype}")
    if not np.isfinite(work).all():
        raise ValueError("image contains NaN or infinite values")
    outs = []
    for img in work:
        t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32) / scale)
        x, _ = denoise_chw(t, noise=noise, method=method, model=model, device=device, tile=tile, overlap=overlap)
        outs.append(x.numpy())
    res = np.stack(outs) * scale
    if np.issubdtype(dtype, np.integer):
        res = np.clip(np.rint(res), 0, scale)
    res = res.astype(dtype)
    if arr.ndim == 2:
        res = res[0, 0]
    else:
        res = np.moveaxis(res.reshape(np.moveaxis(arr, channel_axis, -3).shape), -3, channel_axis)
    return torch.from_numpy(np.ascontiguousarray(res)).to(image.device) if is_tensor else res
