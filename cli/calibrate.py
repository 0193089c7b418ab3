"""``restore calibrate``: a camera noise profile (JSON) from dark and flat RAW frames."""
from __future__ import annotations

import sys
from pathlib import Path


def run_calibrate(args) -> int:
    import numpy as np

    from restore.noise.calibrate import calibrate
    from restore.noise.calibrate_io import load_frames, pair_flats, plot_calibration

    darks, _, levels = load_frames(args.dark)
    flat_frames, exposures, _ = load_frames(args.flat)
    flats = {iso: pair_flats(fr, exposures[iso]) for iso, fr in flat_frames.items()}
    for iso, pairs in flats.items():
        if len(pairs) < 2:
            raise ValueError(f"{args.flat}: ISO {iso} has {len(pairs)} flat pair(s); the photon-transfer fit needs "
                             "pairs (two frames at the same exposure) at two or more exposures")
    black, white = next(iter(levels.values()))
    cal = calibrate(darks, flats, name=args.name or Path(args.output).stem, black=float(np.mean(black)),
                    white=float(np.mean(white)), full_scale=float(np.mean(white) - np.mean(black)))
    cal.profile.to_json(args.output)
    for iso, r in cal.per_iso.items():
        print(f"ISO {iso}: K {r['K']:.4g} DN/e-, Tukey lambda {r['lam']:.3f} scale {r['sigma_tl']:.3g} DN "
              f"(r^2 {r['r2_tl']:.4f}), row {r['sigma_r']:.3g} DN, colour bias "
              f"{', '.join(f'{b:.2f}' for b in r['color_bias'])} DN")
    plots = Path(args.plots) if args.plots else Path(args.output).with_suffix("").with_name(
        Path(args.output).stem + "-plots")
    try:
        written = plot_calibration(cal, plots)
        print(f"plots: {', '.join(str(p) for p in written)}")
    except ImportError:
        print("plots skipped: matplotlib is not installed (pip install matplotlib)", file=sys.stderr)
    print(f"camera profile: {args.output}  (use: restore denoise RAW_DIR --camera {args.output})")
    return 0
