"""``restore cube``: hyperspectral cubes and images larger than memory (train, denoise)."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def add_cube(sub) -> None:
    p = sub.add_parser("cube", help="hyperspectral cubes and images larger than memory",
                       description="Denoise cubes (bands, H, W) and single-channel images of any size tile by tile "
                                   "(memory bounded by the tile), locally or on dask; train the self-supervised "
                                   "band-window model on noisy cubes.")
    csub = p.add_subparsers(dest="cube_command")
    d = csub.add_parser("denoise", help="denoise cubes or large images, streamed to .zarr/.tif/.npy")
    d.add_argument("inputs", nargs="+", help=".zarr, .tif, .npy, .mat, .hdr files (2-D arrays are one-band images)")
    d.add_argument("-o", "--out", default="denoised", help="output folder (default: ./denoised)")
    d.add_argument("--format", default="zarr", choices=["zarr", "tif", "npy"], help="output format (default zarr)")
    d.add_argument("--method", default="auto", choices=["auto", "bandwise", "bandwindow", "subspace"],
                   help="auto: subspace for cubes that fit in memory, bandwindow with --model or --fit, else "
                        "bandwise (the shipped 2-D model on each band)")
    d.add_argument("--model", default=None, help="band-window model from 'restore cube train'")
    d.add_argument("--fit", action="store_true", help="train a band-window model on each input first (--minutes)")
    d.add_argument("--minutes", type=float, default=5.0, help="training time for --fit (default 5)")
    d.add_argument("--sigma", default=None, help="noise std in the data's units (one number); default: per band, estimated")
    d.add_argument("--engine", default="local", choices=["local", "dask"])
    d.add_argument("--workers", type=int, default=0, help="dask: local worker processes (0: threads in this process)")
    d.add_argument("--scheduler", default=None, help="dask: address of an existing scheduler")
    d.add_argument("--tile", default="32,512,512", help="tile size bands,rows,columns (default 32,512,512)")
    d.add_argument("--halo", type=int, default=None, help="pixel halo (default: the method's; 92 = exact for bandwise)")
    d.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    d.add_argument("--json", default=None, help="summary report (default OUT/cube-summary.json)")
    t = csub.add_parser("train", help="train the band-window model on noisy cubes (no clean data)")
    t.add_argument("--data", nargs="+", required=True, help="noisy cubes or folders of cubes")
    t.add_argument("-o", "--output", required=True, help="model file (.safetensors); OUTPUT.ckpt resumes")
    t.add_argument("--k", type=int, default=3, help="neighbouring bands on each side (default 3)")
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--minutes", type=float, default=None)
    t.add_argument("--sigma", default=None, help="noise std (one number); default: per band, estimated")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-regression", action="store_true",
                   help="only the 2k neighbouring bands as inputs (default: also the band predicted from all the "
                        "other bands, which needs whole spectra per tile)")


def _cube_files(items: list[str]) -> tuple[list[Path], list[str]]:
    from restore.io.hsi import HSI_EXTENSIONS

    exts = set(HSI_EXTENSIONS) | {".zarr", ".npy", ".tif", ".tiff"}
    files, missing = [], []
    for it in items:
        p = Path(it)
        if p.is_dir() and p.suffix.lower() != ".zarr":
            files += sorted(q for q in p.rglob("*") if q.suffix.lower() in exts and ".partial" not in q.name)
        elif p.exists():
            files.append(p)
        else:
            missing.append(it)
    return files, missing


def _output_names(files: list[Path]) -> list[str]:
    """Output names: the input's stem; inputs sharing a stem (a/cube.npy, b/cube.mat) add their
    extension, and their position in the batch if that still clashes."""
    stems = [f.stem for f in files]
    first = [f.stem if stems.count(f.stem) == 1 else f"{f.stem}_{f.suffix.lstrip('.')}" for f in files]
    return [n if first.count(n) == 1 else f"{n}_{files.index(f)}" for f, n in zip(files, first)]


def _train(args) -> int:
    from restore.hsi.fit import fit_bandwindow
    from restore.hsi.stream import open_lazy

    files, missing = _cube_files(args.data)
    for m in missing:
        print(f"{m}: no such file or folder", file=sys.stderr)
    if not files:
        raise ValueError("no cubes found in --data (.mat, .hdr, .tif, .npy, .zarr)")
    cubes = [open_lazy(f)[0] for f in files]
    sig = None if args.sigma is None else [float(args.sigma)] * len(cubes)
    fit_bandwindow(cubes, args.output, sigmas=sig, k=args.k, steps=args.steps, minutes=args.minutes, seed=args.seed,
                   regression=not args.no_regression)
    print(f"model: {args.output} (trained on {len(cubes)} cube(s))")
    return 1 if missing else 0


def _denoise(args) -> int:
    from restore.hsi.fit import cube_sigmas, fit_bandwindow
    from restore.hsi.stream import SUBSPACE_MAX_VOXELS, denoise_file, open_lazy

    tile = tuple(int(v) for v in args.tile.split(","))
    if len(tile) != 3:
        raise ValueError(f"--tile needs bands,rows,columns, got {args.tile!r}")
    files, missing = _cube_files(args.inputs)
    for m in missing:
        print(f"{m}: no such file or folder — check the path", file=sys.stderr)
    out_dir = Path(args.out)
    ok, failed, results = 0, len(missing), []
    for f, name in zip(files, _output_names(files)):
        dst = out_dir / f"{name}.{args.format}"
        try:
            if dst.exists():
                raise FileExistsError(f"{dst}: exists; outputs are never overwritten (remove it or pick another -o)")
            cube, info = open_lazy(f)
            B, H, W = (int(s) for s in cube.shape)
            method, model = args.method, args.model
            sigma = None if args.sigma is None else float(args.sigma)
            if args.fit:
                sigma = cube_sigmas(cube) if sigma is None else sigma  # estimated once, for training and denoising
                model = str(out_dir / f"{name}.bandwindow.safetensors")
                fit_bandwindow([cube], model, minutes=args.minutes, steps=10**9, sigmas=[sigma])
                method = "bandwindow" if method == "auto" else method
            if method == "auto":
                method = ("bandwindow" if model else "subspace" if 3 <= B and B * H * W <= SUBSPACE_MAX_VOXELS
                          else "bandwise")
            results.append(denoise_file(f, dst, method=method, model=model, engine=args.engine, workers=args.workers,
                                        address=args.scheduler, tile=tile, halo=args.halo, device=args.device,
                                        sigma=sigma, opened=(cube, info)))
            ok += 1
        except Exception as e:  # noqa: BLE001 - a batch goes on; one line per failed file
            failed += 1
            msg = (str(e).splitlines() or [""])[0]
            print(msg if msg.startswith(str(f)) else f"{f}: {msg if str(dst) in msg else type(e).__name__ + ': ' + msg}",
                  file=sys.stderr)
    out_dir.mkdir(parents=True, exist_ok=True)
    rep = Path(args.json) if args.json else out_dir / "cube-summary.json"
    rep.write_text(json.dumps({"ok": ok, "failed": failed, "results": results}, indent=1))
    print(f"{ok} of {ok + failed} inputs denoised into {out_dir}/ ({failed} failed); summary: {rep}")
    return 1 if failed else 0


def run_cube(args) -> int:
    if args.cube_command == "train":
        return _train(args)
    if args.cube_command == "denoise":
        return _denoise(args)
    print("usage: restore cube {denoise,train} ... (see restore cube --help)", file=sys.stderr)
    return 2
