"""``restore denoise``: a batch over files, folders and globs.

One line per file (size, noise estimate, time); a bad file gets one line
saying what is wrong and the batch goes on; exit 1 if any file failed.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from restore.io import IMAGE_EXTENSIONS, atomic_write_text, list_images, read_image, safe_output_path, write_image
from restore.io.raw import RAW_EXTENSIONS, is_raw


def expand_inputs(inputs: list[str], extensions=IMAGE_EXTENSIONS | RAW_EXTENSIONS) -> list[tuple[Path, Path]]:
    """``(file, path relative to the output folder)`` for every input file with one of ``extensions``
    (each file once; named files that do not exist are kept, to be reported)."""
    pairs: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for inp in inputs:
        root = Path(inp)
        for f in list_images([inp], extensions=extensions):
            key = f.resolve()
            if key in seen:
                continue
            seen.add(key)
            rel = f.relative_to(root) if root.is_dir() and f.is_relative_to(root) else Path(f.name)
            pairs.append((f, rel))
    return pairs


def check_output(dest: Path, inputs: set[Path], written: dict[Path, Path], fix: str) -> Path:
    """``dest.resolve()``, after refusing a destination that is an input or was already written in this
    batch (``fix``: what the user should do about a name clash)."""
    key = dest.resolve()
    if key in inputs:
        raise ValueError(f"output {dest} would overwrite an input file; choose another -o folder")
    if key in written:
        raise ValueError(f"output {dest} was already written for {written[key]} (same file name); {fix}")
    return key


def run_denoise(args) -> int:
    import torch

    from restore.api import Blind, denoise_chw, family_of, load, parse_noise, resolve_device

    pairs = expand_inputs(args.inputs)
    if not pairs:
        print(f"restore denoise: error: no image files found in {' '.join(args.inputs)} "
              "(looked for .png .jpg .jpeg .tif .tiff .npy and camera RAW: .dng .nef .cr2 .arw ...)", file=sys.stderr)
        return 2
    # everything that is the same for every file is checked once, up front (usage errors: exit 2)
    if args.tile < 16 or not 0 <= args.overlap < args.tile // 2:
        raise ValueError(f"--tile {args.tile} --overlap {args.overlap}: need tile >= 16 and 0 <= overlap < tile/2")
    fit_info = None
    if getattr(args, "fit", False):
        if args.model is not None or args.noise != "auto":
            raise ValueError("--fit trains its own model and picks the noise route; drop --model / --noise")
        from restore.adapt import fit_to_images

        fitted = Path(args.output) / "restore-fit.safetensors"
        args.noise, fit_info = fit_to_images([f for f, _ in pairs], fitted, minutes=args.minutes)
        args.model = str(fitted)
        fit_info["model"] = str(fitted)
    parsed = parse_noise(args.noise)
    fam = family_of(parsed)
    est = "est" if parsed is None or isinstance(parsed, Blind) else "given"
    pname = {"gaussian": "sigma", "real": "sigma", "poisson": "zeta", "poisson-gaussian": "gain", "gamma": "k"}[fam]
    device = resolve_device(args.device)
    if args.model is not None:
        load(args.model, device=device)
    out_dir = Path(args.output)
    inputs = {p.resolve() for p, _ in pairs}
    written: dict[Path, Path] = {}
    from tqdm import tqdm

    records, failed = [], 0
    bar = tqdm(pairs, desc="denoise", unit="img", disable=None, file=sys.stderr)
    for path, rel in bar:
        rec = {"input": str(path)}
        t0 = time.perf_counter()
        try:
            dest = safe_output_path(path, out_dir / rel.parent, suffix=args.suffix)
            key = check_output(dest, inputs, written,
                               "denoise them into separate folders or pass their parent folder")
            if is_raw(path):
                rec.update(_denoise_raw_file(path, out_dir / rel.parent, args, device, inputs, written))
                dt = time.perf_counter() - t0
                rec.update(seconds=round(dt, 3), status="ok")
                n = rec["noise"]
                tqdm.write(f"ok     {path}  RAW {rec['width']}x{rec['height']} {rec['cfa']}  poisson-gaussian "
                           f"gain={n['gain']:.3g} sigma={n['sigma']:.3g} ({n['source']})  {dt:.2f}s  "
                           f"-> {', '.join(rec['outputs'])}")
                records.append(rec)
                continue
            img = read_image(path)
            y = torch.from_numpy(img.data.transpose(2, 0, 1).copy())
            x, sigma = denoise_chw(y, noise=args.noise, method=args.method, model=args.model, device=device,
                                   tile=args.tile, overlap=args.overlap, ensemble=args.ensemble)
            write_image(dest, x.numpy().transpose(1, 2, 0), like=img)
            written[key] = path
            dt = time.perf_counter() - t0
            rec.update(output=str(dest), height=img.height, width=img.width, channels=img.channels,
                       dtype=str(img.dtype), alpha=img.alpha is not None, noise=fam,
                       **({"sigma_255": _in_255(sigma)} if pname == "sigma" else {pname: round(sigma, 6)}),
                       param_source=est, seconds=round(dt, 3), status="ok")
            if sigma is None:
                shown = "real noise, model-free"
            elif pname == "sigma":
                shown = ("" if fam == "gaussian" else f"{fam} ") + "sigma=" + \
                    str(_in_255(sigma, 1)).strip("[]").replace(" ", "") + "/255"
            else:
                shown = f"{fam} {pname}={sigma:.4g}"
            tqdm.write(f"ok     {path}  {img.width}x{img.height}x{img.channels} {img.dtype}"
                       f"{' +alpha' if img.alpha is not None else ''}  {shown} ({est})"
                       f"  {dt:.2f}s  -> {dest}")
        except Exception as e:  # noqa: BLE001 - one line per bad file, the batch goes on
            failed += 1
            msg = " ".join(str(e).split()) or type(e).__name__
            if str(path) not in msg:
                msg = f"{path}: {msg}"
            rec.update(status="error", error=msg)
            tqdm.write(f"error  {msg}", file=sys.stderr)
        records.append(rec)
    ok = len(records) - failed
    report = Path(args.json) if args.json else out_dir / "summary.json"
    summary = {"inputs": len(records), "ok": ok, "failed": failed, "device": str(device),
               "noise": args.noise, "method": args.method, "model": args.model or "shipped default",
               "seconds": round(sum(r.get("seconds", 0) for r in records), 3),
               **({"fit": fit_info} if fit_info else {}), "files": records}
    report.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(report, json.dumps(summary, indent=2))
    print(f"{ok} of {len(records)} images denoised into {out_dir}/ ({failed} failed); summary: {report}")
    return 1 if failed else 0


def _denoise_raw_file(path: Path, out_dir: Path, args, device, inputs: set, written: dict) -> dict:
    """Denoise one camera RAW file: the mosaic (DNG or linear TIFF), its rendering
    (TIFF/PNG via rawpy) and a JSON sidecar with the camera metadata and noise."""
    from dataclasses import asdict

    from restore.io import write_image
    from restore.io.raw import read_raw, render_rgb, write_dng, write_mosaic_tiff, write_sidecar
    from restore.rawdenoise import denoise_raw

    kinds = {"raw": ["raw"], "rgb": ["rgb"], "both": ["raw", "rgb"]}[args.raw_output]
    raw_ext = ".dng" if args.raw_format == "dng" else ".tiff"
    dests = {"raw": safe_output_path(path, out_dir, suffix=args.suffix, ext=raw_ext),
             "rgb": safe_output_path(path, out_dir, suffix=args.suffix + ("-rgb" if args.raw_format == "tiff"
                                                                           and args.rgb_format == "tiff" else ""),
                                     ext="." + ("tiff" if args.rgb_format == "tiff" else "png")),
             "json": safe_output_path(path, out_dir, suffix=args.suffix, ext=".json")}
    for kind in kinds + ["json"]:
        check_output(dests[kind], inputs, written, "denoise them into separate folders")
    frame = read_raw(path)
    mosaic, noise = denoise_raw(frame, profile=args.camera, model=args.model, method=args.method, device=device,
                                tile=args.tile, overlap=args.overlap)
    outs = []
    if "raw" in kinds:
        (write_dng if raw_ext == ".dng" else lambda p, m, f: write_mosaic_tiff(p, m))(dests["raw"], mosaic, frame)
        outs.append(dests["raw"])
    if "rgb" in kinds:
        rgb = render_rgb(path, mosaic, bits=16)
        write_image(dests["rgb"], rgb.astype("float32") / 65535.0, dtype="uint16")
        outs.append(dests["rgb"])
    write_sidecar(dests["json"], frame, denoised_from=str(path), noise=asdict(noise),
                  outputs=[str(o) for o in outs])
    for o in outs + [dests["json"]]:
        written[o.resolve()] = path
    h, w = frame.mosaic.shape
    return {"output": str(outs[0]), "outputs": [str(o) for o in outs], "sidecar": str(dests["json"]),
            "height": h, "width": w, "channels": 1, "dtype": "raw", "cfa": frame.cfa,
            "camera": " ".join(v for v in (frame.meta.get("make"), frame.meta.get("model")) if v) or None,
            "iso": frame.meta.get("iso") or None, "noise": asdict(noise)}


def _in_255(sigma, digits: int = 2):
    """A sigma (or one per RGB channel) in 8-bit units."""
    if sigma is None:
        return None
    if isinstance(sigma, (int, float)):
        return round(sigma * 255, digits)
    return [round(v * 255, digits) for v in sigma]
