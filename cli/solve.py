"""``restore solve METHOD``: inverse problems (deblur, inpaint, super-resolve, colourise, low light,
denoise) with a diffusion prior; one line per file, bad files reported and skipped, exit 1 if any failed."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from restore.io import IMAGE_EXTENSIONS, read_image, safe_output_path, write_image

from .denoise import check_output, expand_inputs


def _params(items: list[str] | None) -> dict:
    out: dict = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"--set {item!r}: use KEY=VALUE (e.g. lam=0.5)")
        for cast in (int, float):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out


def run_solve(args) -> int:
    import dataclasses

    import torch

    from restore.api import resolve_device
    from restore.diffusion import load_prior
    from restore.operators import make_operator
    from restore.solvers import SOLVERS
    from restore.solving import check_settings, parse_sigma, solve_tensor

    params = _params(args.set)
    if args.steps is not None:
        params["steps"] = args.steps
    known = {f.name for f in dataclasses.fields(SOLVERS[args.method])}
    bad = sorted(set(params) - known)
    if bad:
        raise ValueError(f"{args.method} has no setting {', '.join(bad)}; its settings: {', '.join(sorted(known))}")
    sigma = parse_sigma(args.noise)
    make_operator(args.operator)  # a bad spec is a usage error, before any work
    device = resolve_device(args.device)
    prior = load_prior(args.prior, patch=args.patch).to(device)
    check_settings(args.method, prior, **params)  # bad values are usage errors too, before any file
    pairs = expand_inputs(args.inputs, extensions=IMAGE_EXTENSIONS)
    if not pairs:
        raise ValueError(f"no image files found in {' '.join(args.inputs)}")
    out_dir = Path(args.output)
    inputs = {p.resolve() for p, _ in pairs}
    written: dict[Path, Path] = {}
    failed = 0
    for f, rel in pairs:
        t0 = time.time()
        try:
            dest = safe_output_path(f, out_dir / rel.parent, args.suffix, ext=args.ext)
            key = check_output(dest, inputs, written, "solve them into separate folders or pass their parent folder")
            img = read_image(f)
            y = torch.from_numpy(img.data.transpose(2, 0, 1).copy())[None].to(device)
            A = make_operator(args.operator)
            x = solve_tensor(y, args.method, A, prior, sigma=sigma, seed=args.seed, **params)
            out = x[0].cpu().numpy().transpose(1, 2, 0)
            same = out.shape == img.data.shape
            dest.parent.mkdir(parents=True, exist_ok=True)
            write_image(dest, out, like=img if same else None, dtype=None if same else img.dtype)
            written[key] = f
        except Exception as e:  # noqa: BLE001 - one line per bad file, the batch goes on
            failed += 1
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(msg if msg.startswith(str(f)) else f"{f}: {msg}", file=sys.stderr)
            continue
        print(f"{f} -> {dest}  {out.shape[1]}x{out.shape[0]}  {args.method} {args.operator}  {time.time() - t0:.1f}s")
    return 1 if failed else 0
