"""``restore train METHOD``: a recipe (or flags) to a model file."""
from __future__ import annotations

import sys


def recipe_from_args(args) -> dict:
    from restore.fitting import build_recipe

    return build_recipe(args.method, output=args.output, recipe=args.recipe, data=args.data, noise=args.noise,
                        synthetic=args.synthetic, channels=args.channels, minutes=args.minutes, steps=args.steps,
                        seed=args.seed, device=args.device)


def run_train(args) -> int:
    from restore.recipe import run_recipe

    recipe = recipe_from_args(args)
    print(f"training {recipe['method']} ({recipe.get('name')}) on {recipe['data']['path']} -> {args.output}",
          file=sys.stderr)
    result = run_recipe(recipe, args.output)
    state = "finished" if result["finished"] else "stopped by the time budget (resume: run the same command again)"
    print(f"{args.output}: {result['steps']} steps, loss {result['loss']:.6f}, "
          f"{result['seconds'] / 60:.1f} min, {state}")
    return 0
