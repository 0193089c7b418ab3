#!/usr/bin/env python
"""Equal-budget peer run: CAREamics 0.3.5 Noise2Void, trained on the noisy images themselves, on CPU.

Run with the anchors venv (CAREamics lives there, not in the system python), from /work/main::

    OMP_NUM_THREADS=1 /work/anchors-venv/bin/python recipes/peers/careamics_n2v.py \\
        --noisy ../shared/data/real/sidd12/noisy --gt ../shared/data/real/sidd12/gt \\
        --minutes 10 --json runs/peers/careamics-n2v-sidd12.json

Smoke test: ``--minutes 0.5 --limit 3``. ``--outputs DIR`` also writes the denoised images as PNG.
``--limit N`` keeps the first N images (by the number in the file name) for training *and* evaluation.

What it does (CAREamics' own API only: ``careamics.config.create_advanced_n2v_config`` + ``CAREamist``):

* the noisy images (``restore.io.read_image`` -> float32 (H,W,3) in [0,1]) are passed, as a list of
  arrays of different sizes, to ``CAREamist.train(train_data=[...])`` with ``data_type="array"``,
  ``axes="YXC"``, ``n_channels=3``. The GT is never seen in training: self-supervised, the images to be
  denoised are the training set (the usual N2V use);
* CAREamics defaults kept: UNet (depth 2, 32 initial channels, batch norm, no N2V2),
  ``independent_channels=True`` (one UNet per colour channel via grouped convs -- CAREamics' N2V default;
  its masking picks different pixels in each channel, so a joint-channel net could read a masked
  pixel's value from the other channels, where sRGB noise is correlated), N2V masking
  ``uniform`` replacement from an 11x11 ROI at 0.2 % of the pixels, ``mean_std`` normalisation with
  per-channel statistics computed by CAREamics from the training data (predictions are denormalised by
  CAREamics), augmentations x/y flips + 90-degree rotations, stratified patching, 8 validation
  patches taken from the training data, Adam (torch default lr 1e-3), ReduceLROnPlateau on val_loss,
  CAREamics' self-supervised checkpointing preset (every 10 epochs + last);
* chosen here (CAREamics has no default for them, or they are needed for CPU / the budget):
  ``patch_size=(64, 64)`` (a usual CAREamics 2D patch size), ``batch_size=16`` (CPU-sized),
  ``num_workers=0`` (no dataloader worker processes: one process, one thread), ``seed=42``,
  ``trainer_params={"accelerator": "cpu", "devices": 1, "max_time": M minutes}`` with
  ``num_epochs`` set very large, so Lightning's ``max_time`` Timer (checked every step, clock
  started at ``on_train_start``) ends training: the epochs/steps that fit the budget are run, and the
  numbers actually run are written to the JSON. The progress bar is off; a small callback prints one
  line per epoch;
* prediction: the final weights (saved with ``trainer.save_checkpoint`` right after training and passed
  as ``checkpoint=``, so the last *step*, not the last periodic checkpoint, is used) via
  ``CAREamist.predict(image, data_type="array", axes="YXC", batch_size=1)``, one call per image (timed,
  whole image, reflect-padded on the far side to a multiple of 4 = 2**depth -- CAREamics refuses
  other sizes, e.g. the 241^2 image -- and cropped back; images with a side larger than ``--tile``
  (default 1024, so every SIDD12 image, 1024^2 included, is predicted whole: ~3.7 GB peak RSS, and about
  half the time of 512-px tiles) are predicted in ``(tile, tile)`` tiles with CAREamics' default 48-px
  overlap); clipped to [0,1];
  PSNR / SSIM by ``restore.metrics`` against ``GT_<i>.png``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np
import torch

import careamics
from careamics import CAREamist
from careamics.config import create_advanced_n2v_config
from lightning.pytorch import Callback

from restore.io import read_image
from restore.metrics import psnr, ssim

PATCH = (64, 64)
BATCH = 16
SEED = 42


def _num(p: Path) -> int:
    m = re.search(r"(\d+)", p.stem)
    if m is None:
        raise ValueError(f"no image number in file name {p.name}")
    return int(m.group(1))


def pairs(noisy_dir: Path, gt_dir: Path, limit: int | None) -> list[tuple[str, Path, Path]]:
    """(name, noisy path, GT path), sorted by the number in the file name; GT_<i> pairs NOISY_<i>."""
    exts = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy"}
    gts = {}
    for g in gt_dir.iterdir():
        m = re.search(r"(\d+)", g.stem)
        if g.suffix.lower() in exts and m is not None:
            gts[int(m.group(1))] = g
    noisy = sorted((p for p in noisy_dir.iterdir() if p.suffix.lower() in exts), key=_num)
    out = []
    for p in noisy:
        i = _num(p)
        if i not in gts:
            raise FileNotFoundError(f"no GT for {p.name} in {gt_dir}")
        out.append((p.stem, p, gts[i]))
    if not out:
        raise FileNotFoundError(f"no images in {noisy_dir}")
    return out[:limit] if limit else out


class EpochLog(Callback):
    """One line per training epoch; keeps the counts actually run."""

    def __init__(self):
        self.t0 = None
        self.epochs = 0  # epoch ends seen (the last one may be partial: max_time stops mid-epoch)
        self.steps = 0
        self.batches_per_epoch = None

    def on_train_start(self, trainer, pl_module):
        self.t0 = time.perf_counter()
        self.batches_per_epoch = int(trainer.num_training_batches)

    def on_train_epoch_end(self, trainer, pl_module):
        self.epochs += 1
        self.steps = int(trainer.global_step)
        m = trainer.callback_metrics
        loss = m.get("train_loss_epoch", m.get("train_loss"))
        val = m.get("val_loss")
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        print(f"epoch {self.epochs} step {self.steps} loss {float(loss) if loss is not None else float('nan'):.4f} "
              f"val {float(val) if val is not None else float('nan'):.4f} lr {lr:.1e} "
              f"{time.perf_counter() - self.t0:.0f}s", flush=True)

    def on_train_end(self, trainer, pl_module):
        self.steps = int(trainer.global_step)


def to_png(path: Path, x: np.ndarray) -> None:
    import cv2

    u8 = np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), u8[..., ::-1] if u8.ndim == 3 else u8):
        raise OSError(f"could not write {path}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--noisy", required=True, help="folder of noisy images (NOISY_<i>.png)")
    ap.add_argument("--gt", required=True, help="folder of ground truths (GT_<i>.png), used for metrics only")
    ap.add_argument("--minutes", type=float, required=True, help="wall-clock training budget (Lightning max_time)")
    ap.add_argument("--json", required=True, help="where to write the results JSON")
    ap.add_argument("--outputs", default=None, help="optional folder for the denoised PNGs")
    ap.add_argument("--limit", type=int, default=None, help="first N images only (training and evaluation)")
    ap.add_argument("--tile", type=int, default=1024,
                    help="predict images with a side larger than this in (tile, tile) tiles (multiple of 4)")
    ap.add_argument("--data-name", default="sidd12", help="the 'data' field of the JSON row")
    args = ap.parse_args(argv)

    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    items = pairs(Path(args.noisy), Path(args.gt), args.limit)
    noisy = [read_image(p).data.astype(np.float32) for _, p, _ in items]
    for (name, _, _), x in zip(items, noisy):
        if x.ndim != 3 or x.shape[2] != 3:
            raise ValueError(f"{name}: expected an RGB image (H,W,3), got {x.shape}")
    budget_s = max(1, int(round(args.minutes * 60)))
    max_time = f"00:{budget_s // 3600:02d}:{budget_s % 3600 // 60:02d}:{budget_s % 60:02d}"

    config = create_advanced_n2v_config(
        experiment_name="careamics_n2v_peer",
        data_type="array",
        axes="YXC",
        n_channels=3,
        patch_size=list(PATCH),
        batch_size=BATCH,
        num_epochs=1_000_000,          # never reached: max_time ends training
        num_workers=0,
        trainer_params={"accelerator": "cpu", "devices": 1, "max_time": max_time},
        seed=SEED,
    )
    log = EpochLog()
    mp = sum(x.shape[0] * x.shape[1] for x in noisy) / 1e6
    print(f"careamics {careamics.__version__}, torch {torch.__version__}, threads {threads}; "
          f"{len(noisy)} images ({mp:.2f} MP); patch {PATCH} batch {BATCH}; max_time {max_time}", flush=True)

    with tempfile.TemporaryDirectory(prefix="careamics-n2v-") as work:
        careamist = CAREamist(config, work_dir=work, callbacks=[log], enable_progress_bar=False)
        n_params = sum(p.numel() for p in careamist.model.parameters())
        t0 = time.perf_counter()
        careamist.train(train_data=noisy)
        train_s = time.perf_counter() - t0
        steps, epochs = int(careamist.trainer.global_step), log.epochs
        per_epoch = log.batches_per_epoch or 0
        mult = 2 ** int(careamist.config.algorithm_config.model.depth)
        if args.tile % mult:
            raise ValueError(f"--tile must be a multiple of {mult}")
        final_ckpt = Path(work) / "final.ckpt"
        careamist.trainer.save_checkpoint(final_ckpt)
        norm = careamist.config.data_config.normalization.model_dump(mode="json")
        print(f"trained {train_s:.1f}s: {steps} steps ({per_epoch} batches/epoch, "
              f"{steps / max(1, per_epoch):.2f} epochs); normalisation {norm}", flush=True)

        images, total_pred_s = [], 0.0
        for (name, _, gt_path), x in zip(items, noisy):
            gt = read_image(gt_path).data.astype(np.float32)
            if gt.shape != x.shape:
                raise ValueError(f"{name}: GT shape {gt.shape} != noisy shape {x.shape}")
            h, w = x.shape[:2]
            tiled = max(h, w) > args.tile
            if tiled:
                xin, kw = x, {"tile_size": (args.tile, args.tile), "tile_overlap": (48, 48)}
            else:  # whole image: CAREamics' UNet wants sides that are multiples of 2**depth -> reflect-pad
                xin = np.pad(x, ((0, (-h) % mult), (0, (-w) % mult), (0, 0)), mode="reflect")
                kw = {"tile_size": None}
            tp = time.perf_counter()
            preds, _ = careamist.predict(xin, data_type="array", axes="YXC", batch_size=1,
                                         checkpoint=str(final_ckpt), **kw)
            dt = time.perf_counter() - tp
            total_pred_s += dt
            y = np.asarray(preds[0], dtype=np.float32).squeeze()
            if y.shape == (xin.shape[2], xin.shape[0], xin.shape[1]):  # C-first output
                y = y.transpose(1, 2, 0)
            y = y[:h, :w]
            if y.shape != x.shape:
                raise ValueError(f"{name}: prediction shape {y.shape} != input {x.shape}")
            y = np.clip(y, 0.0, 1.0)
            row = {"image": name, "psnr": psnr(y, gt), "ssim": ssim(y, gt), "seconds": dt,
                   "psnr_noisy": psnr(x, gt), "tiled": tiled, "size": [h, w],
                   "padded": list(xin.shape[:2]) if xin.shape != x.shape else None}
            images.append(row)
            print(f"{name} {x.shape[1]}x{x.shape[0]}: PSNR {row['psnr']:.2f} (noisy {row['psnr_noisy']:.2f}) "
                  f"SSIM {row['ssim']:.4f}  {dt:.1f}s", flush=True)
            if args.outputs:
                to_png(Path(args.outputs) / f"{name}.png", y)

    out = {
        "settings": {
            "minutes": args.minutes, "max_time": max_time, "steps": steps, "batches_per_epoch": per_epoch,
            "epochs": steps / max(1, per_epoch), "epochs_entered": epochs,
            "careamics": careamics.__version__, "torch": torch.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "images": len(items), "limit": args.limit, "megapixels": mp, "params": n_params,
            "api": "careamics.config.create_advanced_n2v_config + CAREamist.train/predict",
            "chosen": {"patch_size": list(PATCH), "batch_size": BATCH, "num_workers": 0, "seed": SEED,
                       "trainer_params": {"accelerator": "cpu", "devices": 1, "max_time": max_time},
                       "num_epochs": 1_000_000, "tile": args.tile, "tile_overlap": [48, 48]},
            "algorithm_config": careamist.config.algorithm_config.model_dump(mode="json"),
            "normalization": norm,
            "training_data": "the noisy images themselves (self-supervised; GT used for metrics only)",
        },
        "rows": [{
            "data": args.data_name, "noise": "real", "sigma": "est", "method": "careamics-n2v",
            "psnr": float(np.mean([r["psnr"] for r in images])),
            "ssim": float(np.mean([r["ssim"] for r in images])),
            "ms_per_mp": 1000.0 * total_pred_s / mp,
            "train_seconds": train_s,
            "images": images,
        }],
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2))
    r = out["rows"][0]
    print(f"mean PSNR {r['psnr']:.3f} SSIM {r['ssim']:.4f} over {len(images)} images; train {train_s:.1f}s "
          f"({steps} steps, {steps / max(1, per_epoch):.2f} epochs); predict {r['ms_per_mp']:.0f} ms/MP; wrote {args.json}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
