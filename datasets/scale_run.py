"""Runner for recipes/scale-stream.yaml: make each synthetic zarr input, denoise it with
``restore cube denoise`` under ``/usr/bin/time -v``, and log seconds, s/megavoxel and peak RSS.

    OMP_NUM_THREADS=2 python -m datasets.scale_run recipes/scale-stream.yaml [--only image|cube|dask]

``model: random-bandwindow`` writes an untrained band-window model (speed and memory do not depend
on the weights).  Results: WORKDIR/scale.json (appended run by run).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml


def _input(work: Path, run: dict) -> Path:
    from .synthetic_large import write_cube, write_image

    p = work / f"{run['kind']}-{'x'.join(map(str, run['dims']))}.zarr"
    if not p.exists():
        t = time.time()
        (write_image if run["kind"] == "image" else write_cube)(str(p), *run["dims"])
        print(f"made {p} in {time.time() - t:.0f} s", flush=True)
    return p


def _model(work: Path) -> Path:
    p = work / "random-bandwindow.safetensors"
    if not p.exists():
        import torch

        from restore.hsi.bandwindow import BandWindowNet
        from restore.train.checkpoint import save_model

        torch.manual_seed(0)
        net = BandWindowNet()
        save_model(p, net, {"method": "bandwindow", "method_params": {"k": net.k}, "net": net.config(),
                            "note": "untrained: for speed/memory runs only"})
    return p


def run_one(work: Path, run: dict, tag: str) -> dict:
    src = _input(work, run)
    out = work / f"out-{tag}"
    if out.exists():
        shutil.rmtree(out)
    args = run["args"].split() + ["--sigma", "0.1"]
    if run.get("model") == "random-bandwindow":
        args += ["--model", str(_model(work))]
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "restore.cli.main", "cube", "denoise", str(src), "-o", str(out), *args]
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    summ = json.loads((out / "cube-summary.json").read_text()) if (out / "cube-summary.json").exists() else {}
    res = (summ.get("results") or [{}])[0]
    rec = {"tag": tag, **run, "rc": p.returncode, "wall_s": wall, "peak_rss_mb": int(rss.group(1)) / 1024 if rss else None,
           "seconds": res.get("seconds"), "s_per_megavoxel": res.get("s_per_megavoxel"),
           "megavoxels": float(__import__("numpy").prod(run["dims"])) / 1e6, "stderr_tail": p.stderr[-300:] if p.returncode else ""}
    print(json.dumps(rec), flush=True)
    shutil.rmtree(out, ignore_errors=True)
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("recipe")
    ap.add_argument("--only", choices=["image", "cube", "dask"], default=None)
    a = ap.parse_args(argv)
    cfg = yaml.safe_load(Path(a.recipe).read_text())
    work = Path(cfg["workdir"])
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", str(cfg.get("threads", 2)))
    jobs = [(r, f"{r['kind']}-{'x'.join(map(str, r['dims']))}-local") for r in cfg["runs"]]
    jobs += [(r, f"{r['kind']}-{'x'.join(map(str, r['dims']))}-dask") for r in cfg.get("dask", [])]
    if a.only:
        jobs = [(r, t) for r, t in jobs if (t.endswith("-dask") if a.only == "dask" else
                                            (r["kind"] == a.only and t.endswith("-local")))]
    with open(work / "scale.json", "a") as f:
        for r, tag in jobs:
            f.write(json.dumps(run_one(work, r, tag)) + "\n")
            f.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
