"""The training engine: one loop for every method."""
from .checkpoint import load_checkpoint, read_model, save_checkpoint, save_model
from .ema import EMA
from .loop import TrainConfig, train
from .recipe import load_recipe, run_recipe

__all__ = ["EMA", "TrainConfig", "train", "save_model", "read_model", "save_checkpoint", "load_checkpoint", "load_recipe", "run_recipe"]
