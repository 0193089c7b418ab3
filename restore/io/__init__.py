"""Image input/output for ``restore``.

* :func:`read_image` -> :class:`Image` (float32 (H, W, C) data in [0, 1] for
  8/16-bit files, raw for float TIFF/.npy; alpha kept aside untouched);
  problems raise :class:`ImageReadError` with a one-line, actionable message.
* :func:`write_image` writes results back in the source's storage type
  (``like=image``), re-attaching its alpha, atomically.
* :func:`list_images` expands files, folders and globs; :func:`safe_output_path`
  maps an input to an output path and never to the input itself;
  :func:`atomic_write` is the temp-file-then-rename primitive.
* :func:`to_tensor` / :func:`to_numpy` convert (H, W, C) <-> torch (C, H, W).

OpenCV, tifffile, pillow and torch are imported only when first needed.
"""
from .atomic import (
    IMAGE_EXTENSIONS,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    list_images,
    safe_output_path,
)
from .images import MIN_SIZE, Image, ImageReadError, read_image, to_numpy, to_tensor, write_image

__all__ = [
    "read_image",
    "write_image",
    "Image",
    "ImageReadError",
    "list_images",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "safe_output_path",
    "IMAGE_EXTENSIONS",
    "MIN_SIZE",
    "to_tensor",
    "to_numpy",
]
