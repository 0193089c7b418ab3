"""Image quality metrics: PSNR, SSIM (scikit-image), LPIPS (optional).

Images are float arrays in [0, 1], ``(H, W)`` or ``(H, W, C)`` (NumPy) or
``(C, H, W)`` tensors (converted).
"""
from __future__ import annotations

import numpy as np


def _hwc(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
        if a.ndim == 3:
            a = a.transpose(1, 2, 0)
    a = np.asarray(a, dtype=np.float64)
    return a[..., None] if a.ndim == 2 else a


def psnr(x, ref, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(range^2 / MSE)``."""
    x, ref = _hwc(x), _hwc(ref)
    mse = float(np.mean((x - ref) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(data_range**2 / mse)


def ssim(x, ref, data_range: float = 1.0) -> float:
    """Structural similarity (Wang et al. 2004; scikit-image, 7x7 uniform window)."""
    from skimage.metrics import structural_similarity

    x, ref = _hwc(x), _hwc(ref)
    return float(structural_similarity(x, ref, data_range=data_range, channel_axis=-1))


def _alexnet_weights():
    """The torchvision AlexNet checkpoint LPIPS needs, if it is on disk (torch hub cache), else None."""
    import glob
    import os

    import torch

    found = glob.glob(os.path.join(torch.hub.get_dir(), "checkpoints", "alexnet-owt-*.pth"))
    return found[0] if found else None


def lpips_available() -> tuple[bool, str]:
    """Whether LPIPS (AlexNet) can run here without downloading anything, and if not, why."""
    try:
        import lpips  # noqa: F401
    except Exception as e:  # noqa: BLE001
        return False, f"the optional 'lpips' package is not importable ({type(e).__name__}: {e}); pip install 'restore-imaging[lpips]'"
    if _alexnet_weights() is None:
        import torch

        return False, (f"the AlexNet backbone weights (alexnet-owt-*.pth) are not in {torch.hub.get_dir()}/checkpoints "
                       "and restore never downloads; copy them there to enable LPIPS")
    return True, ""


_LPIPS = None


def lpips_distance(x, ref) -> list[float]:
    """LPIPS (AlexNet, v0.1) between (N, C, H, W) tensors in [0, 1] (grey is repeated to RGB); one value per image.

    Raises RuntimeError with the reason when :func:`lpips_available` says it cannot run.
    """
    global _LPIPS
    import torch

    ok, why = lpips_available()
    if not ok:
        raise RuntimeError(f"LPIPS unavailable: {why}")
    if _LPIPS is None:
        import lpips

        _LPIPS = lpips.LPIPS(net="alex", verbose=False).eval()
    x, ref = torch.as_tensor(x).float(), torch.as_tensor(ref).float()
    if x.shape[1] == 1:
        x, ref = x.repeat(1, 3, 1, 1), ref.repeat(1, 3, 1, 1)
    with torch.no_grad():
        return _LPIPS(x * 2 - 1, ref * 2 - 1).flatten().tolist()


# --- hyperspectral cubes: (B, H, W) arrays, bands first, values in [0, 1] (data_range) ---------------------------

def mpsnr(x, ref, data_range: float = 1.0) -> float:
    """Mean over bands of the band PSNR (dB); cubes (B, H, W)."""
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    return float(np.mean([psnr(a, b, data_range) for a, b in zip(x, ref)]))


def mssim(x, ref, data_range: float = 1.0) -> float:
    """Mean over bands of the band SSIM (scikit-image defaults, as in the QRNN3D protocol)."""
    from skimage.metrics import structural_similarity

    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    return float(np.mean([structural_similarity(a, b, data_range=data_range) for a, b in zip(x, ref)]))


def sam(x, ref, *, degrees: bool = False, eps: float = 1e-8) -> float:
    """Spectral angle mapper: mean over pixels of ``arccos(<x_p, r_p> / (|x_p| |r_p|))``.

    Radians by default (as the QRNN3D protocol); ``degrees=True`` for degrees.  ``eps`` only guards
    zero spectra: QRNN3D adds it to numerator and norms, which gives identical spectra an angle of
    ~1e-4 rad (arccos is steep at 1); here identical spectra give 0."""
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    num = (x * ref).sum(axis=0)
    den = np.maximum(np.sqrt((x * x).sum(axis=0)) * np.sqrt((ref * ref).sum(axis=0)), eps)
    ang = np.arccos(np.clip(num / den, -1.0, 1.0))
    return float(np.degrees(ang.mean()) if degrees else ang.mean())


def ergas(x, ref, *, ratio: float = 1.0) -> float:
    """ERGAS (Wald 2000): ``100 / ratio * sqrt(mean_b(RMSE_b^2 / mean(ref_b)^2))``; ratio = resolution
    ratio (1 for denoising).  Dimensionless; lower is better."""
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    rmse2 = ((x - ref) ** 2).reshape(x.shape[0], -1).mean(axis=1)
    mu2 = ref.reshape(ref.shape[0], -1).mean(axis=1) ** 2
    return float(100.0 / ratio * np.sqrt(np.mean(rmse2 / np.maximum(mu2, 1e-30))))
