"""``restore.solve``: an inverse problem ``y = A(x) + noise`` solved with a diffusion prior.

    x = restore.solve(y, "reddiff", operator="blur:sigma=2", noise="gaussian:0.05",
                      prior="prior-color64.safetensors", channel_axis=-1)

``y`` is a numpy array or tensor in [0, 1] (the measurement: for
``downsample`` it is the small image, for ``grayscale`` one channel).  The
result has the *image's* shape (e.g. ``factor`` times larger for
super-resolution), same type as ``y``.
"""
from __future__ import annotations


import numpy as np
import torch

from restore.diffusion import DiffusionPrior, load_prior
from restore.operators import Exposure, Grayscale, Operator, make_operator
from restore.solvers import get_solver

__all__ = ["solve", "parse_sigma", "solve_tensor", "check_settings"]


def check_settings(method: str, prior: DiffusionPrior, **params) -> None:
    """Build the solver once and check its step count against the prior (ValueError on a bad value)."""
    solver = get_solver(method, **params)
    steps = getattr(solver, "steps", None)
    if steps is not None:
        prior.schedule.timesteps(int(steps))
    solver.validate()


def parse_sigma(noise: str | float | None) -> float:
    """Measurement noise std in [0, 1] units from ``gaussian:S`` / ``S`` / None (0).

    ``S <= 1`` is read in [0, 1] units, ``S > 1`` in 8-bit units (``gaussian:25`` = 25/255).
    """
    if noise is None:
        return 0.0
    if isinstance(noise, (int, float)):
        s = float(noise)
    else:
        kind, _, value = str(noise).strip().lower().partition(":")
        if kind in ("none", "0"):
            return 0.0
        if kind != "gaussian" or not value:
            raise ValueError(f"--noise {noise!r}: use gaussian:SIGMA (SIGMA <= 1 in [0, 1] units, > 1 in 8-bit units)")
        try:
            s = float(value)
        except ValueError:
            raise ValueError(f"--noise {noise!r}: SIGMA must be a number") from None
    if not (s >= 0 and np.isfinite(s)):
        raise ValueError(f"noise sigma must be finite and >= 0, got {s}")
    return s / 255.0 if s > 1 else s


def _fit_operator(A: Operator, y: torch.Tensor) -> Operator:
    """A blind Exposure gets an offset map of the image size (GDP's M), zeros to start."""
    if isinstance(A, Exposure) and A.learnable and A.offset is not None and A.offset.ndim == 0:
        return Exposure(A.gain.item(), offset=torch.zeros(y.shape[-2:]), learnable=True)
    return A


def solve_tensor(y: torch.Tensor, method: str, A: Operator, prior: DiffusionPrior, *, sigma: float = 0.0,
                 seed: int = 0, **params) -> torch.Tensor:
    """(N, C, h, w) measurement tensor -> (N, C, H, W) estimate, all on ``y``'s device."""
    if isinstance(A, Grayscale):
        if y.shape[1] > 1 and bool((y == y[:, :1]).all()):
            y = y[:, :1]  # a grey image stored as RGB
        if y.shape[1] != 1:
            raise ValueError(f"the grayscale operator needs a 1-channel measurement, got {y.shape[1]} channels "
                             "that differ: give the grey image to colourise")
        if prior.channels != A.weights.numel():
            raise ValueError(f"colourisation needs a {A.weights.numel()}-channel prior, this one models "
                             f"{prior.channels}: use --prior color64")
    elif y.shape[1] != prior.channels:
        raise ValueError(f"the prior models {prior.channels}-channel images, the measurement has {y.shape[1]} "
                         "channels: use a prior with matching channels")
    A = _fit_operator(A, y).to(y.device)
    gen = torch.Generator(device=y.device).manual_seed(int(seed))
    return get_solver(method, **params)(y, A, prior, sigma=sigma, generator=gen)


def solve(y, method: str = "reddiff", *, operator: str | Operator = "identity", noise=None,
          prior: str | DiffusionPrior, channel_axis: int | None = None, seed: int = 0, device: str = "cpu",
          **params):
    """Solve ``y = A(x) + N(0, sigma^2)`` with ``method`` (reddiff, gdp, dps, ddrm) and a diffusion prior.

    Args:
        y: measurement, (H, W) or with channels on ``channel_axis`` (numpy or torch), [0, 1].
        operator: an :class:`Operator` or a spec (``blur:sigma=2``, ``mask:p=0.5``,
            ``downsample:factor=4``, ``grayscale``, ``exposure:gain=0.1,blind=1``, ``identity``).
        noise: ``gaussian:SIGMA`` or a number (see :func:`parse_sigma`); None = noiseless.
        prior: a path (see :func:`restore.diffusion.load_prior`) or a loaded prior.
        seed: random seed (the solvers are stochastic).
        params: solver settings (``steps``, ``lr``, ``lam``, ``scale``, ``zeta``, ...).
    Returns the estimate with the image's shape, channels on ``channel_axis``, same type as ``y``.
    """
    is_torch = isinstance(y, torch.Tensor)
    arr = y.detach().cpu().numpy() if is_torch else np.asarray(y)
    arr = arr.astype(np.float32)
    if arr.ndim == 2:
        chw = arr[None]
    elif arr.ndim == 3 and channel_axis is not None:
        chw = np.moveaxis(arr, channel_axis, 0)
    else:
        raise ValueError(f"y of shape {arr.shape}: give a 2-D image or channel_axis for a 3-D one")
    A = make_operator(operator) if isinstance(operator, str) else operator
    P = load_prior(prior) if not isinstance(prior, DiffusionPrior) else prior
    dev = torch.device(device)
    P.to(dev)
    t = torch.from_numpy(np.ascontiguousarray(chw))[None].to(dev)
    with torch.inference_mode(False):
        out = solve_tensor(t, method, A, P, sigma=parse_sigma(noise), seed=seed, **params)[0].cpu().numpy()
    if arr.ndim == 3:
        out = np.moveaxis(out, 0, channel_axis)
    elif out.shape[0] == 1:
        out = out[0]
    else:  # a 2-D measurement whose image has channels (colourisation): channels last
        out = np.moveaxis(out, 0, -1)
    return torch.from_numpy(out).to(y.device) if is_torch else out
