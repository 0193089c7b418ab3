"""``restore bench``: quality and speed against anchors; table on screen, JSON on disk."""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path


def _settings(args) -> dict:
    cfg: dict = {}
    if args.recipe:
        import yaml

        cfg = yaml.safe_load(Path(args.recipe).read_text()) or {}
        cfg.setdefault("name", Path(args.recipe).stem)
    for key in ("data", "pairs", "model", "seed", "limit", "workers", "json", "noise", "reuse"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.sigmas:
        cfg["sigmas"] = [float(s) for s in args.sigmas.split(",")]
    if args.methods:
        cfg["methods"] = args.methods.split(",")
    if cfg.get("kind") in ("solve", "solve-patch", "hsi"):
        return cfg
    if not cfg.get("data") and not cfg.get("pairs"):
        raise ValueError("give --data DIR... (clean images), --pairs NOISY_DIR GT_DIR, or --recipe YAML")
    cfg.setdefault("methods", ["noisy", "ours", "ours-est", "bm3d"])
    cfg.setdefault("sigmas", [15, 25, 50])
    cfg.setdefault("seed", 0)
    return cfg


def _speed_image(cfg):
    """A 512x512 grey image for the speed test (first image large enough, centre crop)."""
    from restore.bench import load_clean

    for folder in cfg.get("data") or []:
        for _, img in load_clean(folder):
            if img.shape[0] >= 512 and img.shape[1] >= 512:
                i, j = (img.shape[0] - 512) // 2, (img.shape[1] - 512) // 2
                return img[i : i + 512, j : j + 512, :1]
    return None


def _write_results(cfg: dict, out: dict) -> Path:
    """Write the full results as JSON (atomically) to ``cfg["json"]`` or bench-NAME.json."""
    from restore.io import atomic_write_text

    dest = Path(cfg.get("json") or f"bench-{cfg.get('name', 'run')}.json")
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(dest, json.dumps(out, indent=1))
    return dest


def run_bench(args) -> int:
    import torch

    import restore
    from restore.bench import bench_pairs, bench_synthetic, default_workers, format_table, speed_test

    cfg = _settings(args)
    t0 = time.time()
    out = {"settings": cfg, "restore": restore.__version__, "torch": torch.__version__,
           "threads": torch.get_num_threads(), "machine": platform.machine(), "started": time.ctime()}
    log = lambda s: print(s, flush=True)  # noqa: E731
    if cfg.get("kind") == "solve-patch":  # GDP's patch method on a large crop (recipes/demo-gdp-patch.yaml)
        from restore.bench_solve import patch_demo

        out.update(patch_demo(cfg["image"], cfg["png"], prior=cfg["prior"], operator=cfg["operator"],
                              sigma=float(cfg.get("sigma", 0.0)), size=int(cfg.get("size", 256)),
                              patch=cfg.get("patch"), stride=cfg.get("stride"), seed=int(cfg.get("seed", 0)),
                              log=log, **cfg.get("params", {})))
        print(f"results: {_write_results(cfg, out)}")
        return 0
    if cfg.get("kind") == "hsi":  # hyperspectral denoisers (recipes/bench-hsi.yaml)
        from restore.bench_hsi import bench_hsi, format_hsi_table

        out["rows"] = bench_hsi(cfg, log=log)
        out["minutes"] = (time.time() - t0) / 60
        print("\n" + format_hsi_table(out["rows"]))
        print(f"results: {_write_results(cfg, out)}  ({out['minutes']:.1f} min)")
        return 0
    if cfg.get("kind") == "solve":  # diffusion-prior solvers (recipes/bench-diffusion.yaml)
        from restore.bench_solve import bench_solve, format_solve_table

        data = cfg["data"][0] if isinstance(cfg["data"], list) else cfg["data"]
        res = bench_solve(data, cfg["tasks"], cfg["methods"], prior=cfg["prior"], crop=int(cfg.get("crop", 64)),
                          limit=cfg.get("limit"), seed=int(cfg.get("seed", 0)), log=log)
        out.update(res)
        out["minutes"] = (time.time() - t0) / 60
        print("\nPSNR (dB) / SSIM / seconds per image\n" + format_solve_table(res["rows"]))
        if res["lpips"]:
            print(f"LPIPS unavailable: {res['lpips']}")
        print(f"results: {_write_results(cfg, out)}  ({out['minutes']:.1f} min)")
        return 0
    if cfg.get("speed", True) and cfg.get("data") and cfg.get("mode") != "estimators" \
            and cfg.get("noise", "gaussian") == "gaussian":
        img = _speed_image(cfg)
        if img is not None:
            sp = speed_test(img, 25 / 255, cfg["methods"], model=cfg.get("model"))
            out["speed"] = sp
            for m, v in sp.items():
                if isinstance(v, dict) and "ms_per_mp" in v:
                    extra = f"  (ours is {v['ours_speedup']:.1f}x faster)" if "ours_speedup" in v else ""
                    log(f"speed 512x512 grey: {m:12s} {v['seconds'] * 1000:9.1f} ms/image "
                        f"{v['ms_per_mp']:9.1f} ms/MP{extra}")
    if cfg.get("mode") == "estimators":
        from restore.bench import bench_estimators, bench_family_estimators

        if cfg.get("noise", "gaussian") != "gaussian":
            res = bench_family_estimators(cfg["data"], cfg["sigmas"], cfg["noise"], seed=cfg["seed"],
                                          model=cfg.get("model"), limit=cfg.get("limit"), log=log)
        else:
            res = bench_estimators(cfg["data"], cfg["sigmas"], seed=cfg["seed"], model=cfg.get("model"),
                                   limit=cfg.get("limit"), log=log)
        out.update(res)
        print(f"results: {_write_results(cfg, out)}")
        return 0
    if cfg.get("noise") == "sensor":
        from restore.bench_raw import bench_raw

        res = bench_raw(cfg["data"], cfg["sigmas"], cfg["methods"], profile=cfg.get("profile", "SonyA7S2"),
                        ratio=float(cfg.get("ratio", 50)), seed=cfg["seed"], model=cfg.get("model"),
                        limit=cfg.get("limit"), log=log)
    elif cfg.get("pairs"):
        res = bench_pairs(*cfg["pairs"], cfg["methods"], model=cfg.get("model"), limit=cfg.get("limit"),
                          noise=cfg.get("noise", "gaussian"), reuse=cfg.get("reuse"), log=log)
    else:
        res = bench_synthetic(cfg["data"], cfg["sigmas"], cfg["methods"], seed=cfg["seed"], model=cfg.get("model"),
                              limit=cfg.get("limit"), workers=cfg.get("workers") or default_workers(),
                              noise=cfg.get("noise", "gaussian"), reuse=cfg.get("reuse"), log=log)
    out.update(res)
    out["minutes"] = (time.time() - t0) / 60
    table = format_table(res["rows"])
    print("\nPSNR (dB) / SSIM\n" + table)
    for m, why in res["skipped"].items():
        print(f"skipped {m}: {why}", file=sys.stderr)
    dest = _write_results(cfg, out)
    print(f"results: {dest}  ({out['minutes']:.1f} min)")
    return 0
