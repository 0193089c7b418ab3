"""Make the bundled noisy sample images in ``datasets/samples/``.

    python datasets/make_samples.py

Clean sources are scikit-image's own test images (public domain / CC0, see
``skimage.data``); each is cropped to a small size and corrupted with seeded
Gaussian noise, then stored as 8-bit PNG.  Only the noisy copies are kept.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLES = [
    # (file name, skimage.data function, crop (top, left, size), sigma in 8-bit units)
    ("camera_sigma25.png", "camera", (40, 120, 256), 25),
    ("moon_sigma15.png", "moon", (120, 120, 256), 15),
    ("astronaut_sigma25.png", "astronaut", (20, 100, 256), 25),
    ("coffee_sigma15.png", "coffee", (80, 160, 256), 15),
    ("chelsea_sigma35.png", "chelsea", (20, 60, 256), 35),
]


def make(out_dir: Path = Path(__file__).parent / "samples", seed: int = 0) -> list[Path]:
    import skimage.data
    from skimage.util import img_as_float32

    from restore.io import write_image

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (name, fn, (top, left, size), sigma) in enumerate(SAMPLES):
        clean = img_as_float32(getattr(skimage.data, fn)())[top : top + size, left : left + size]
        rng = np.random.default_rng([seed, i])
        noisy = np.clip(clean + sigma / 255.0 * rng.standard_normal(clean.shape), 0, 1).astype(np.float32)
        path = out_dir / name
        write_image(path, noisy, dtype=np.uint8)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in make():
        print(p)
