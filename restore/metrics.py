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


def lpips_available() -> tuple[bool, str]:
    """Whether LPIPS can run here, and if not, why (it never downloads)."""
    try:
        import lpips  # noqa: F401
    except Exception as e:  # noqa: BLE001
        return False, f"the optional 'lpips' package is not importable ({type(e).__name__}: {e}); pip install 'restore-imaging[lpips]'"
    return True, ""
