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

from restore.color import opponent_sigmas, opponent_to_rgb, rgb_to_opponent
from restore.methods import Method, get_method
from restore.nets import build_net
from restore.noise import (Gamma, Gaussian, NoiseModel, Poisson, PoissonGaussian, estimate_channel_sigmas,
                           estimate_sigma, make_noise)
from restore.noise.vst import through_gat
from restore.tiling import tiled_apply
from restore.train.checkpoint import model_noise, read_model
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
        return self.method.input_multiple(self.net)

    def __call__(self, y: torch.Tensor, sigma: torch.Tensor, origins=None) -> torch.Tensor:
        if self.device.type == "cpu":
            y = y.contiguous(memory_format=torch.channels_last)
        extra = {"origins": origins} if self.method.uses_origins else {}
        return self.method.restore(self.net, y, sigma.reshape(-1).type_as(y), **extra)

    def run(self, y: torch.Tensor | np.ndarray, sigma: float, *, tile: int | None = DEFAULT_TILE,
            overlap: int = DEFAULT_OVERLAP, batch_size: int = 4, progress=None, ensemble: bool = False,
            window: str = "hann"):
        """Restore one image ``(C, H, W)`` (tensor or numpy/memmap) tile by tile.

        ``ensemble``: average the estimates of the 8 flips/90-degree rotations of
        each tile (geometric self-ensemble; 8x the compute).  ``window``: tile
        blending (:func:`restore.tiling.tiled_apply`; ``"crop"`` is exact for
        an overlap of at least twice the receptive-field radius).
        """

        def one(batch: torch.Tensor, origins=None) -> torch.Tensor:
            s = torch.full((batch.shape[0],), float(sigma), dtype=batch.dtype, device=batch.device)
            return self(batch, s, origins)

        def fn(batch: torch.Tensor, origins=None) -> torch.Tensor:
            if not ensemble:
                return one(batch, origins)
            acc = torch.zeros_like(batch)
            for k in range(4):
                for flip in (False, True):
                    t = torch.rot90(batch, k, dims=(-2, -1))
                    t = t.flip(-1) if flip else t
                    out = one(t.contiguous())
                    out = out.flip(-1) if flip else out
                    acc += torch.rot90(out, -k, dims=(-2, -1))
            return acc / 8

        return tiled_apply(fn, y, tile=tile, overlap=overlap, window=window, batch_size=batch_size,
                           multiple=self.multiple, device=self.device, progress=progress,
                           origins=self.method.uses_origins)


def load(model: str | Path | None = None, *, channels: int = 1, method: str = "default",
         device: str | torch.device | None = "auto", noise: str = "gaussian") -> Restorer:
    """Load a model file (``.safetensors`` from ``restore train``) or a shipped default.

    ``model=None`` picks the shipped default for ``channels`` (1 grey, 3 colour)
    and ``method`` (``"default"`` = the best measured one).
    """
    path = Path(model) if model is not None else default_weights(method, channels, noise)
    state, meta = read_model(path)
    net = build_net(meta["net"])
    net.load_state_dict(state)
    dev = resolve_device(device)
    net = net.to(dev).eval()
    if dev.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    m = get_method(meta["method"], **meta.get("method_params", {}))
    return Restorer(method=m, net=net, meta=meta, device=dev)


BLIND_FAMILIES = ("poisson", "poisson-gaussian", "gamma", "real")
#: Real (correlated sRGB) noise through a Gaussian model: the sub-images' estimated sigma is
#: scaled by this (chosen on the even-numbered half of sidd12: 1.0/1.3/1.6/1.9 -> 31.13/33.49/
#: 33.67/33.35 dB with the enhancement pass; recipes/bench-real-sidd12.yaml).
REAL_SIGMA_SCALE = 1.6


@dataclass(frozen=True)
class Blind:
    """A noise family whose parameters are estimated per image (:func:`restore.noise.nlf.fit_noise`)."""

    family: str

    def resolve(self, y: torch.Tensor) -> NoiseModel:
        from restore.noise.nlf import fit_noise

        p = fit_noise(y, self.family)
        if self.family == "poisson":
            return Poisson(p)
        if self.family == "gamma":
            return Gamma(p)
        gain, sigma = p
        if sigma <= 0:
            return Poisson(max(gain, 1e-6))
        return PoissonGaussian(max(gain, 1e-6), sigma)


def family_of(nm) -> str:
    """``"gaussian"``, ``"poisson"``, ``"poisson-gaussian"``, ``"gamma"`` or ``"real"`` for a parsed noise."""
    if nm is None or isinstance(nm, Gaussian):
        return "gaussian"
    if isinstance(nm, Blind):
        return nm.family
    return {Poisson: "poisson", PoissonGaussian: "poisson-gaussian", Gamma: "gamma"}[type(nm)]


def parse_noise(noise: str | float | NoiseModel | None) -> NoiseModel | Blind | None:
    """The noise model to use; None means "estimate a Gaussian sigma per image".

    * ``None``, ``"auto"``, ``"gaussian"`` -> None (estimated);
    * ``"gaussian:25"`` -> Gaussian with sigma 25/255: a spec string's sigma is
      always in 8-bit units (fraction of full scale x 255), whatever the dtype;
      ``"gaussian:10,20,30"`` -> one sigma per RGB channel (a ``(3,)`` sigma);
    * a float -> Gaussian sigma in image units ([0, 1] intensities);
    * ``"poisson"``, ``"poisson-gaussian"``, ``"gamma"`` without parameters ->
      :class:`Blind` (estimated per image); ``"poisson:0.01"``,
      ``"poisson-gaussian:0.01,0.02"``, ``"gamma:100"`` as in :func:`make_noise`;
    * a :class:`NoiseModel` is used as is.
    """
    if noise is None or isinstance(noise, NoiseModel):
        return noise
    if isinstance(noise, (int, float)):
        return Gaussian(float(noise))
    spec = str(noise).strip().lower()
    if spec in ("auto", "gaussian"):
        return None
    if spec in BLIND_FAMILIES:
        return Blind(spec)
    kind, _, value = spec.partition(":")
    if kind == "gaussian":
        try:
            sigma = [float(v) for v in value.split(",")]
        except ValueError:
            raise ValueError(f"--noise {noise}: SIGMA must be a number in 8-bit units, e.g. gaussian:25 "
                             "(or one per RGB channel, gaussian:10,20,30)") from None
        if len(sigma) not in (1, 3) or not all(0 < v < 255 for v in sigma):
            raise ValueError(f"--noise {noise}: SIGMA must be in (0, 255) 8-bit units, e.g. gaussian:25 "
                             "(or one per RGB channel, gaussian:10,20,30)")
        return Gaussian(torch.tensor(sigma) / 255.0 if len(sigma) == 3 else sigma[0] / 255.0)
    return make_noise(spec)


#: Blind RGB: the channels get their own sigmas when the largest estimate exceeds the smallest
#: by this factor; below it the mean of the three (the per-channel estimates are noisier).
PER_CHANNEL_RATIO = 1.25


def gaussian_sigma(y_chw: torch.Tensor, noise: NoiseModel | None) -> float | tuple[float, float, float]:
    """The Gaussian sigma to use for ``y`` (C, H, W): given, or estimated (wavelet MAD).
    RGB noise with a different std per channel gives a tuple of three sigmas."""
    if noise is None:
        if y_chw.shape[0] != 3:
            return float(estimate_sigma(y_chw[None])[0])
        s = estimate_channel_sigmas(y_chw)
        return tuple(s) if max(s) > PER_CHANNEL_RATIO * max(min(s), 1e-8) else float(np.mean(s))
    if not isinstance(noise, Gaussian):
        raise NotImplementedError(
            f"{type(noise).__name__} noise is not supported by the shipped Gaussian models yet; use gaussian[:SIGMA]")
    if noise.sigma.numel() == 3 and y_chw.shape[0] == 3:
        return tuple(float(v) for v in noise.sigma.reshape(-1))
    if noise.sigma.numel() != 1:
        raise ValueError(f"{noise.sigma.numel()} Gaussian sigmas for a {y_chw.shape[0]}-channel image: "
                         "give one sigma, or three for an RGB image")
    return float(noise.sigma.reshape(-1)[0])


_CACHE: dict[tuple, Restorer] = {}


def _cached_load(model, channels, method, device, noise="gaussian") -> Restorer:
    stamp = Path(model).stat().st_mtime_ns if model is not None and Path(model).is_file() else None
    key = (str(model), stamp, channels, method, str(device), noise)
    if key not in _CACHE:
        _CACHE[key] = load(model, channels=channels, method=method, device=device, noise=noise)
    return _CACHE[key]


def select_model(channels: int, *, method: str = "default", model=None, device="auto",
                 noise: str = "gaussian") -> Restorer:
    """The model for an image with ``channels`` channels and ``noise`` family:
    a colour model for RGB when one is shipped (or given), else the grey model
    (Gaussian noise: on each channel of an orthonormal opponent transform,
    :mod:`restore.color`).  Poisson-type noise without a shipped model of its
    own falls back to the Gaussian one (used through the GAT)."""
    want = 3 if channels == 3 else 1
    fallback = noise.startswith("poisson") or noise in ("real", "raw")
    for fam in dict.fromkeys([noise, "gaussian"] if fallback else [noise]):
        for ch in dict.fromkeys([want, 1]):
            try:
                return _cached_load(model, ch, method, device, fam)
            except FileNotFoundError:
                if model is not None:
                    raise
    return _cached_load(model, want, method, device, noise)  # raises the one-line error


def denoise_chw(y: torch.Tensor | np.ndarray, *, noise=None, method: str = "default", model=None, device="auto",
                tile: int | None = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, progress=None,
                ensemble: bool = False) -> tuple[torch.Tensor, float]:
    """Denoise a float ``(C, H, W)`` image; returns ``(x_hat, param)``: the Gaussian
    sigma (a tuple of three for RGB noise with a std per channel), Poisson zeta /
    Poisson-Gaussian gain, or Gamma k used (given or estimated).

    Values are taken as [0, 1] intensities (noisy data may overshoot).  Float
    data far outside that range (below -3 or above 4, e.g. physical units) is
    mapped affinely to [0, 1] by its min/max, denoised, and mapped back; a
    float ``noise`` is then in the data's units, the returned ``sigma`` in the
    normalised ones.
    Outputs of [0, 1] data are clipped to [0, 1].
    """
    y = torch.as_tensor(y)
    c = y.shape[0]
    if c not in (1, 3):
        raise ValueError(f"image has {c} channels; 1 (grey) or 3 (RGB) are supported — pass alpha separately")
    if min(y.shape[-2:]) < 8:
        raise ValueError(f"image is {y.shape[-1]}x{y.shape[-2]} pixels; at least 8x8 is needed")
    lo, hi = float(y.min()), float(y.max())
    rescale = lo < -3.0 or hi > 4.0  # noisy [0, 1] data stays inside this even at sigma ~ 0.5
    if rescale:
        y = (y - lo) / (hi - lo)
    nm = parse_noise(noise)
    fam = family_of(nm)
    r = select_model(c, method=method, model=model, device=device, noise=fam)
    run = dict(tile=tile, overlap=overlap, progress=progress, ensemble=ensemble)
    trained_for = model_noise(r.meta)
    if fam == "real":
        out, sigma = _run_real(r, y, trained_for, run)
        return (out * (hi - lo) + lo if rescale else out.clamp_(0, 1)), sigma
    if isinstance(nm, Blind):
        nm = nm.resolve(y)
    if fam != "gaussian" and trained_for == fam:  # a model trained for this family
        level = float((nm.gain if fam == "poisson" else nm.k).reshape(-1)[0])
        if r.channels == c:
            out = torch.as_tensor(r.run(y, level, **run))
        else:  # independent noise per channel: the grey model channel by channel
            out = torch.cat([torch.as_tensor(r.run(y[k : k + 1], level, tile=tile, overlap=overlap,
                                                   ensemble=ensemble))
                             for k in range(c)])
        sigma = level
    elif trained_for != "gaussian":
        raise ValueError(f"this model is trained for {trained_for} noise, not {fam}; "
                         f"pass --noise {trained_for}[:PARAM] or a model for {fam} noise")
    elif fam == "gamma":
        raise ValueError(f"Gamma noise needs a model trained for it (this one is for {trained_for} noise); "
                         "train one with 'restore train n2s --noise gamma ...' and pass --model")
    elif isinstance(nm, (Poisson, PoissonGaussian)):
        # Shot noise: generalised Anscombe transform -> Gaussian model -> exact unbiased inverse.
        gain = float(nm.gain.reshape(-1)[0])
        sig = float(nm.sigma.reshape(-1)[0]) if isinstance(nm, PoissonGaussian) else 0.0
        out = through_gat(lambda t, s_t: _run_gaussian(r, t, s_t, **run), y, gain, sig)
        sigma = gain
    else:
        sigma = gaussian_sigma(y, nm)
        if rescale and isinstance(noise, (int, float)):
            sigma /= hi - lo  # a float sigma is in the data's own units
        out = _run_gaussian(r, y, sigma, **run)
    if rescale:
        return out * (hi - lo) + lo, sigma
    return out.clamp_(0, 1), sigma


def _run_real(r: Restorer, y: torch.Tensor, trained_for: str, run: dict) -> tuple[torch.Tensor, float | None]:
    """Real correlated noise: a model trained for it (blind-spot family, no noise parameter) runs
    as it is; a Gaussian model runs through pixel-shuffle down-sampling
    (:func:`restore.realnoise.pd_gaussian`).  Returns ``(x_hat, sigma)``, ``sigma`` None for the former."""
    from restore.realnoise import pd_gaussian

    if trained_for == "real":
        if r.channels != y.shape[0]:
            raise ValueError(f"this real-noise model expects {r.channels} channels but the image has {y.shape[0]}")
        return torch.as_tensor(r.run(y, 0.0, tile=run["tile"], overlap=run["overlap"], progress=run["progress"])), None
    if trained_for == "real-fit":  # fitted to a folder's own noise (restore.realfit): averaged with the route
        from restore.realfit import fitted_real

        base = select_model(y.shape[0], device=r.device, noise="real")  # the shipped route's model

        def route(t):
            return _run_real(base, t, "gaussian", run)[0]

        x, s = fitted_real(y, route, lambda t, s: r.run(t, s, tile=run["tile"], overlap=run["overlap"]))
        return x, float(np.mean(s))
    if trained_for != "gaussian":
        raise ValueError(f"this model is trained for {trained_for} noise; real noise needs a Gaussian model "
                         "or one trained with 'restore train apbsn|sdap|cbsn' on noisy photos")
    x, sig = pd_gaussian(lambda t, s: _run_gaussian(r, t, s, **run), y, sigma_scale=REAL_SIGMA_SCALE)
    return x, float(sum(sig) / len(sig))


def _run_gaussian(r: Restorer, y: torch.Tensor, sigma, *, tile, overlap, progress=None,
                  ensemble: bool = False) -> torch.Tensor:
    """``y`` (C, H, W) with white Gaussian noise of std ``sigma`` through the model ``r``;
    RGB through a grey model runs per channel of an orthonormal opponent transform.
    Three sigmas (RGB, one std per channel): each opponent channel gets its own std
    (:func:`restore.color.opponent_sigmas`); a colour model gets their root mean square."""
    c = y.shape[0]
    if not isinstance(sigma, (int, float)) and not (r.channels == 1 and c == 3):
        sigma = float(np.sqrt(np.mean(np.square(sigma))))
    if r.channels == c:
        return torch.as_tensor(r.run(y, sigma, tile=tile, overlap=overlap, progress=progress, ensemble=ensemble))
    if r.channels == 1 and c == 3:
        z = rgb_to_opponent(y)
        return opponent_to_rgb(torch.cat([torch.as_tensor(r.run(z[k : k + 1], s, tile=tile, overlap=overlap,
                                                                ensemble=ensemble))
                                          for k, s in enumerate(opponent_sigmas(sigma))]))
    raise ValueError(f"the model expects {r.channels} channels but the image has {c}")


def denoise(image, *, noise="auto", method: str = "default", model=None, channel_axis: int | None = None,
            device="auto", tile: int | None = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, ensemble: bool = False):
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
        ensemble: average over the 8 flips/rotations (geometric self-ensemble, 8x slower).
    """
    is_tensor = isinstance(image, torch.Tensor)
    if is_tensor and image.dtype in (torch.bfloat16, torch.float16):
        arr = image.detach().cpu().float().numpy()
    else:
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
    if np.issubdtype(dtype, np.signedinteger):
        raise TypeError(f"signed integer images ({dtype}) are ambiguous; convert to uint8/uint16 or float in [0, 1]")
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
        x, _ = denoise_chw(t, noise=noise, method=method, model=model, device=device, tile=tile, overlap=overlap,
                           ensemble=ensemble)
        outs.append(x.numpy())
    res = np.stack(outs) * scale
    if np.issubdtype(dtype, np.integer):
        res = np.clip(np.rint(res), 0, scale)
    res = res.astype(dtype)
    if arr.ndim == 2:
        res = res[0, 0]
    else:
        res = np.moveaxis(res.reshape(np.moveaxis(arr, channel_axis, -3).shape), -3, channel_axis)
    if is_tensor:
        return torch.from_numpy(np.ascontiguousarray(res)).to(device=image.device, dtype=image.dtype)
    return res
