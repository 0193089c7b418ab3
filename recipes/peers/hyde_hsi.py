#!/usr/bin/env python
"""Peer run: HyDe's classical hyperspectral denoisers (``hyde-images`` 0.4.3) on one noisy cube, on CPU.

Run with the anchors venv (HyDe lives there, not in the system python), from /work/main::

    OMP_NUM_THREADS=1 /work/anchors-venv/bin/python recipes/peers/hyde_hsi.py \\
        --noisy NOISY.npy --out-dir DIR [--methods hyres,fasthyde] [--sigma-per-band SIG.npy]

Input: ``NOISY.npy`` float32 (B, H, W), bands first, values about [0, 1].  For each method it writes
``DIR/<method>.npy`` (float32, (B, H, W), not clipped) and, at the end, prints one JSON line to stdout::

    {"hyres": {"seconds": 1.2, "ok": true}, "fasthyde": {"seconds": ..., "ok": false, "error": "..."}}

A method that raises (or returns non-finite values) is reported with ``ok: false`` and a one-line
``error``; the other methods still run.  Exit status 0 if at least one method succeeded, else 1.

What it runs (HyDe's own API, its defaults):

* ``hyres``: ``hyde.HyRes()`` (decomp_level=5, db5 wavelet, symmetric padding) called as ``hyres(x)``;
* ``fasthyde``: ``hyde.FastHyDe()`` called as
  ``fasthyde(x, noise_type="additive", iid=IID, k_subspace=10, normalize=True)``.

``x`` is a CPU ``torch.float32`` tensor [rows, cols, bands] (the cube transposed from (B, H, W); the output
is transposed back).  float32 because HyDe's README builds its inputs that way; HyDe does the sensitive
parts in float64 itself where it cares (HyRes' and FastHyDe's main noise estimate), and HyRes casts the
PCs to float32 for the wavelet step anyway.  Everything runs under ``torch.no_grad()``; each method is
timed with ``time.perf_counter`` around the call only (loading, transposes and saving excluded).

``iid`` choice for FastHyDe: HyDe's default ``iid=True``.  The brief's rule was ``iid=False`` when
``--sigma-per-band SIG.npy`` (B,) is given and clearly varies (max/min > 1.2 over the bands with sigma > 0),
but HyDe 0.4.3's ``iid=False`` branch is broken (see quirks; on Samson with sigma ~ U(10,70)/255 per band
it gives 8.8 dB MPSNR against 16.8 dB for the noisy input, while ``iid=True`` gives 38.3 dB and a correct
whiten -> iid=True -> re-colour by hand 38.2 dB).  So a clearly varying sigma-per-band still runs
``iid=True`` unless ``HYDE_NONIID_FIXED`` below is set to True (for a HyDe with the bug fixed); the choice
made is logged to stderr.  The sigmas themselves are never passed to HyDe (it has no argument for them):
HyDe always estimates the noise itself (multiple regression over bands + HySime).

HyDe quirks noticed while reading hyde 0.4.3:

* HyRes (``hyde.HyRes`` is the class in ``hyde/transform_domain/hyres.py``, not the older
  ``hyde/hyres.py``) pads only when
  ``rows % 32 != 0`` (32 = 2**decomp_level), and then pads rows *and* cols by ``32 - n % 32`` on the far
  side (symmetric/reflect), i.e. by a full 32 if a side is already a multiple (95x95 -> 96x96,
  100x100 -> 128x128), and crops back.  A cube with ``rows % 32 == 0`` but ``cols % 32 != 0`` is not
  padded and crashes (reshape error after the inverse DWT); for that case this script swaps rows and
  cols before the call and back after (the wavelet model is separable, so this is the same problem).
  Its ``custom_pca_image`` *reshapes* (not transposes) the PCs to (cols, rows, p), so when the padded
  cube is not square the wavelet shrinkage sees a scrambled image (the pixel order is undone
  consistently, so the output is not garbled, only denoised on a wrong layout); square is fine.
  The noise estimate is in float64; the PCs are cast to float32 for the DWT whatever the input dtype.
* FastHyDe with ``normalize=True`` min-max normalises every band to [0, 1] before the noise estimate and
  undoes it afterwards.  In the ``iid=False`` branch it whitens with ``sqrt(inv(Rw)) @ Y`` (fine: Rw is
  diagonal) but re-colours with ``torch.sqrt(Rw @ Y)`` -- an *element-wise* sqrt of the product, not
  ``sqrtm(Rw) @ Y`` as in the MATLAB original -- which gives sigma_b * sqrt(y) (NaN for negative y).
  So ``iid=False`` is broken in 0.4.3 (no error, no NaN on our data: just a wrong cube), hence not used
  (see above); its whitening noise estimate also runs in the input dtype, not float64.
* FastHyDe denoises each of the k_subspace=10 eigen-images with ``bm3d.bm3d`` (the ``bm3d`` PyPI
  package, CPU only), with sigma from the HySime noise estimate.
  HySime picks the subspace but only its first k_subspace columns are used.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

METHODS = ("hyres", "fasthyde")
# HyDe 0.4.3 FastHyDe(iid=False) re-colours with torch.sqrt(Rw @ Y) (element-wise) instead of sqrtm(Rw) @ Y:
# its output is wrong, so the non-iid branch is only used if this is set to True (for a fixed HyDe).
HYDE_NONIID_FIXED = False


def _iid_from_sigmas(path: str | None) -> tuple[bool, str]:
    if not path:
        return True, "no --sigma-per-band: iid=True"
    s = np.asarray(np.load(path), np.float64).ravel()
    s = s[np.isfinite(s) & (s > 0)]
    if s.size == 0:
        return True, "sigma-per-band all zero/invalid: iid=True"
    ratio = float(s.max() / s.min())
    if ratio <= 1.2:
        return True, f"sigma-per-band max/min={ratio:.3f} (flat): iid=True"
    if HYDE_NONIID_FIXED:
        return False, f"sigma-per-band max/min={ratio:.3f} (varying): iid=False"
    return True, (f"sigma-per-band max/min={ratio:.3f} (varying) but HyDe 0.4.3's iid=False is broken: iid=True")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--noisy", required=True, help="float32 (B,H,W) .npy, values about [0,1]")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--methods", default=",".join(METHODS), help="comma list of: " + ",".join(METHODS))
    ap.add_argument("--sigma-per-band", default=None, help="(B,) .npy of noise sigmas; only picks FastHyDe's iid")
    a = ap.parse_args(argv)

    methods = [m.strip().lower() for m in a.methods.split(",") if m.strip()]
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    noisy = np.load(a.noisy)
    if noisy.ndim != 3:
        raise SystemExit(f"--noisy must be (B,H,W), got shape {noisy.shape}")
    iid, iid_note = _iid_from_sigmas(a.sigma_per_band)
    print(f"[hyde_hsi] cube {noisy.shape} {noisy.dtype}; fasthyde {iid_note}", file=sys.stderr)

    import torch
    import hyde

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    x_np = np.ascontiguousarray(np.transpose(noisy.astype(np.float32), (1, 2, 0)))  # (H, W, B)
    _, h, w = noisy.shape
    swap_hyres = h % 32 == 0 and w % 32 != 0  # HyRes would not pad and crash (see docstring)

    results: dict[str, dict] = {}
    for m in methods:
        t0 = seconds = None
        try:
            x = torch.from_numpy(x_np.copy())  # fresh tensor: HyDe may modify arrays in place
            with torch.no_grad():
                if m == "hyres":
                    den = hyde.HyRes()
                    if swap_hyres:
                        x = x.transpose(0, 1).contiguous()
                    t0 = time.perf_counter()
                    y = den(x)
                    seconds = time.perf_counter() - t0
                    if swap_hyres:
                        y = y.transpose(0, 1)
                elif m == "fasthyde":
                    den = hyde.FastHyDe()
                    t0 = time.perf_counter()
                    y = den(x, noise_type="additive", iid=iid, k_subspace=10, normalize=True)
                    seconds = time.perf_counter() - t0
                else:
                    raise ValueError(f"unknown method {m!r} (known: {', '.join(METHODS)})")
            out = np.ascontiguousarray(np.transpose(y.detach().cpu().numpy(), (2, 0, 1))).astype(np.float32)
            if out.shape != noisy.shape:
                raise RuntimeError(f"output shape {out.shape} != input {noisy.shape}")
            np.save(out_dir / f"{m}.npy", out)
            bad = int((~np.isfinite(out)).sum())
            if bad:
                raise RuntimeError(f"{bad} non-finite values in the output (saved anyway)")
            results[m] = {"seconds": round(seconds, 3), "ok": True}
        except Exception as e:  # noqa: BLE001 - one method's failure must not stop the others
            if seconds is None and t0 is not None:  # raised inside the call
                seconds = time.perf_counter() - t0
            entry = {"seconds": round(seconds, 3) if seconds is not None else None, "ok": False}
            entry["error"] = " ".join(f"{type(e).__name__}: {e}".split())[:300]
            results[m] = entry
        print(f"[hyde_hsi] {m}: {results[m]}", file=sys.stderr)

    print(json.dumps(results))
    return 0 if any(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
