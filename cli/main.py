"""``restore`` command: argument parsing and dispatch (thin over restore.api).

Exit codes: 0 all good, 1 some inputs failed, 2 usage error.
"""
from __future__ import annotations

import argparse
import sys


def _add_denoise(sub) -> None:
    p = sub.add_parser("denoise", help="denoise image files, folders or globs",
                       description="Denoise images with a self-supervised model. Inputs are never modified; "
                                   "outputs keep format, bit depth and alpha and are written atomically.")
    p.add_argument("inputs", nargs="+", help="image files, folders (recursive) or globs")
    p.add_argument("-o", "--out", dest="output", default="denoised", help="output folder (default: ./denoised)")
    p.add_argument("--output", dest="raw_output", default="both", choices=["raw", "rgb", "both"],
                   help="camera RAW inputs: write the denoised mosaic (raw), the rendered image (rgb) or both "
                        "(default); other images are unaffected")
    p.add_argument("--raw-format", default="dng", choices=["dng", "tiff"],
                   help="denoised mosaic as DNG (default) or 16-bit linear single-channel TIFF")
    p.add_argument("--rgb-format", default="tiff", choices=["tiff", "png"],
                   help="rendered RAW output (rawpy's pipeline): 16-bit TIFF (default) or 16-bit PNG")
    p.add_argument("--camera", default=None,
                   help="camera noise profile for RAW files: a JSON from 'restore calibrate' or a shipped name "
                        "(SonyA7S2); default: estimate the noise from each frame")
    p.add_argument("--method", default="default", help="model family of the shipped weights (default: default)")
    p.add_argument("--noise", default="auto",
                   help="'auto' (estimate a Gaussian sigma per image; RGB: one per channel when they differ), "
                        "gaussian[:SIGMA] with SIGMA in 8-bit units (e.g. 25; RGB: gaussian:R,G,B), "
                        "poisson[:ZETA], poisson-gaussian[:GAIN,SIGMA] or gamma[:K]; no value = estimated; "
                        "'real' for camera sRGB noise (spatially correlated)")
    p.add_argument("--model", default=None, help="a .safetensors model written by 'restore train'")
    p.add_argument("--tile", type=int, default=512, help="tile side in pixels (memory is bounded by the tile)")
    p.add_argument("--overlap", type=int, default=64, help="tile overlap in pixels")
    p.add_argument("--ensemble", action="store_true",
                   help="average over the 8 flips/rotations (geometric self-ensemble): ~0.1 dB better, 8x slower")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--json", default=None, help="summary report path (default: OUTPUT/summary.json)")
    p.add_argument("--suffix", default="", help="text added to output file names (default: none)")
    p.add_argument("--fit", action="store_true",
                   help="first train a model on these noisy images themselves (self-supervised, from the shipped "
                        "default; correlated camera noise is detected), save it as OUTPUT/restore-fit.safetensors, "
                        "then denoise them with it")
    p.add_argument("--minutes", type=float, default=10.0, help="training time for --fit (default 10)")


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a self-supervised model on noisy images",
                       description="Train a model from noisy images only. A recipe (YAML) names everything; "
                                   "flags override it. Interrupted runs resume from MODEL.ckpt.")
    p.add_argument("method", help="method name (n2s, r2r, gr2r, n2v)")
    p.add_argument("--data", default=None, help="folder of noisy images (or clean ones with --synthetic)")
    p.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    p.add_argument("--recipe", default=None, help="recipe YAML (see recipes/)")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget; the run checkpoints and stops")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps")
    p.add_argument("--channels", type=int, default=None, choices=[1, 3])
    p.add_argument("--noise", default=None, help="the data's noise: gaussian[:SIGMA] (8-bit units), poisson[:ZETA], "
                   "gamma[:K] or poisson-gaussian[:GAIN,SIGMA]; without a parameter it is estimated per image")
    p.add_argument("--synthetic", default=None, metavar="LO,HI",
                   help="treat --data as clean images and add noise on the fly: Gaussian sigma in [LO,HI]/255, "
                   "or with --noise poisson|gamma a zeta / k range")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, choices=["cpu", "cuda"])


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="PSNR/SSIM/speed benchmark against anchors",
                       description="Benchmark on clean images with seeded synthetic noise, or on noisy/GT pairs.")
    p.add_argument("--recipe", default=None, help="benchmark recipe YAML (recipes/bench-*.yaml)")
    p.add_argument("--data", nargs="*", default=None, help="folders of clean images")
    p.add_argument("--pairs", nargs=2, default=None, metavar=("NOISY_DIR", "GT_DIR"))
    p.add_argument("--sigmas", default=None, help="comma-separated noise levels: Gaussian sigmas in 8-bit units "
                   "(e.g. 15,25,50), Poisson gains zeta (0.01,0.05) or Gamma shapes k (100,50)")
    p.add_argument("--noise", default=None, choices=["gaussian", "gaussian-rgb", "poisson", "gamma", "real", "sensor"],
                   help="noise family added to the clean images (default gaussian; gaussian-rgb: RGB stds "
                        "level x (0.5, 1, 1.5); real: --pairs of real noisy photos, correlated noise; sensor: the images un-processed to RAW "
                        "with camera sensor noise, --sigmas then lists ISOs, the recipe names profile and ratio)")
    p.add_argument("--reuse", nargs="+", default=None, metavar="JSON",
                   help="earlier bench results whose anchor rows (same seed, data, noise, level, images) "
                        "are reused instead of recomputed (BM3D is slow); reused rows say so")
    p.add_argument("--methods", default=None,
                   help="comma-separated: noisy, ours, ours-est, bm3d, skimage-nlm, skimage-wavelet")
    p.add_argument("--model", default=None, help="model for 'ours' (default: the shipped default)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--limit", type=int, default=None, help="use the first N images of each folder")
    p.add_argument("--workers", type=int, default=None, help="processes for the slow anchors (BM3D)")
    p.add_argument("--json", default=None, help="where to write the full results (JSON)")


def _add_calibrate(sub) -> None:
    p = sub.add_parser("calibrate", help="camera noise profile from dark and flat RAW frames",
                       description="Calibrate a camera's sensor noise (ELD model: gain K from the photon-transfer "
                                   "curve of flat pairs; row noise, Tukey-lambda read noise and colour bias from "
                                   "dark frames; log-linear fits across ISO). Frames are grouped by ISO (the "
                                   "file's, or a number in its folder name); take flats in pairs per exposure.")
    p.add_argument("--dark", required=True, help="folder of dark (lens-cap, shortest exposure) RAW frames")
    p.add_argument("--flat", required=True, help="folder of flat-field RAW frames, two per exposure, "
                   "several exposures per ISO")
    p.add_argument("-o", "--output", required=True, help="camera profile JSON to write")
    p.add_argument("--name", default=None, help="camera name in the profile (default: the file name)")
    p.add_argument("--plots", default=None, help="folder for the fit plots (default: OUTPUT-plots/)")


def _add_solve(sub) -> None:
    p = sub.add_parser("solve", help="inverse problems with a diffusion prior (deblur, inpaint, super-resolve, ...)",
                       description="Restore x from y = A(x) + noise with a diffusion prior: RED-Diff and GDP, "
                                   "with DPS and DDRM as baselines. Inputs are measurements in the image's units.")
    p.add_argument("method", choices=["reddiff", "gdp", "dps", "ddrm"])
    p.add_argument("inputs", nargs="+", help="measurement images, folders or globs")
    p.add_argument("--operator", default="identity",
                   help="degradation A: identity (denoise), blur:sigma=S, mask:p=P,seed=N (P = fraction kept), "
                        "downsample:factor=F, grayscale, exposure:gain=G[,blind=1]; compose with @")
    p.add_argument("--noise", default=None, help="measurement noise gaussian:SIGMA (<= 1: [0,1] units, > 1: 8-bit)")
    p.add_argument("--prior", required=True, help="diffusion prior: a .safetensors from 'restore train prior', "
                   "a diffusers UNet2DModel folder or a guided-diffusion .pt")
    p.add_argument("-o", "--out", dest="output", default="solved", help="output folder (default: ./solved)")
    p.add_argument("--steps", type=int, default=None, help="solver steps (default: the solver's)")
    p.add_argument("--set", nargs="*", default=None, metavar="KEY=VALUE",
                   help="solver settings, e.g. lam=0.5 lr=0.1 (reddiff), scale=0.1 mode=xt (gdp), zeta=0.5 (dps)")
    p.add_argument("--patch", type=int, default=None,
                   help="tile side for images larger than the prior (default: the prior's training size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--suffix", default="", help="text added to output file names")
    p.add_argument("--ext", default=None, help="output format, e.g. .png (default: the input's)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="restore", description="Self-supervised image restoration and denoising.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    _add_denoise(sub)
    _add_train(sub)
    _add_bench(sub)
    _add_calibrate(sub)
    _add_solve(sub)
    from .cube import add_cube

    add_cube(sub)
    sub.add_parser("info", help="versions, devices, shipped models, optional dependencies")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from restore import __version__

        print(f"restore {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "denoise":
            from .denoise import run_denoise

            return run_denoise(args)
        if args.command == "train":
            from .train import run_train

            return run_train(args)
        if args.command == "bench":
            from .bench import run_bench

            return run_bench(args)
        if args.command == "calibrate":
            from .calibrate import run_calibrate

            return run_calibrate(args)
        if args.command == "solve":
            from .solve import run_solve

            return run_solve(args)
        if args.command == "cube":
            from .cube import run_cube

            return run_cube(args)
        if args.command == "info":
            from .info import run_info

            return run_info()
    except (ValueError, FileNotFoundError, NotImplementedError, ImportError) as e:
        print(f"restore {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
