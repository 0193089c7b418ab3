"""The training engine: one loop for every method."""
from .checkpoint import load_checkpoint, model_noise, read_model, save_checkpoint, save_model
from .ema import EMA
from .loop import TrainConfig, train

__all__ = ["EMA", "TrainConfig", "train", "save_model", "read_model", "model_noise", "save_checkpoint", "load_checkpoint"]
