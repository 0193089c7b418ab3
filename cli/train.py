"""``restore train METHOD``: a recipe (or flags) to a model file."""
from __future__ import annotations

import sys
from pathlib import Path


def recipe_from_args(args) -> dict:
    from restore.train import load_recipe

    if args.recipe:
        recipe = load_recipe(args.recipe)
        if recipe["method"] != args.method:
            raise ValueError(f"{args.recipe}: recipe trains {recipe['method']!r}, not {args.method!r}")
    else:
        if not args.data:
            raise ValueError("give --data DIR (a folder of noisy images) or --recipe YAML")
        recipe = {"name": Path(args.output).stem, "method": args.method, "data": {"kind": "noisy"},
                  "train": {"steps": 5000}}
    data, train = recipe.setdefault("data", {}), recipe.setdefault("train", {})
    if args.data:
        data["path"] = args.data
    if not data.get("path"):
        raise ValueError("the recipe names no data path; give --data DIR")
    if args.channels:
        data["channels"] = args.channels
    if args.synthetic:
        lo, hi = (float(v) for v in args.synthetic.split(","))
        data.update(kind="synthetic", sigma_range=[lo, hi])
    if args.noise:
        kind, _, value = args.noise.partition(":")
        if kind != "gaussian":
            raise ValueError(f"--noise {args.noise}: only gaussian[:SIGMA] is supported for training yet")
        data["sigma"] = float(value) if value else None
    for key in ("minutes", "steps", "seed", "device"):
        if getattr(args, key) is not None:
            train[key] = getattr(args, key)
    return recipe


def run_train(args) -> int:
    from restore.train import run_recipe

    recipe = recipe_from_args(args)
    print(f"training {recipe['method']} ({recipe.get('name')}) on {recipe['data']['path']} -> {args.output}",
          file=sys.stderr)
    result = run_recipe(recipe, args.output)
    state = "finished" if result["finished"] else "stopped by the time budget (resume: run the same command again)"
    print(f"{args.output}: {result['steps']} steps, loss {result['loss']:.6f}, "
          f"{result['seconds'] / 60:.1f} min, {state}")
    return 0
