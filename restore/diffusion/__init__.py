"""Diffusion priors: the DDPM schedule and the epsilon-prediction prior the solvers use."""
from .prior import DiffusionPrior
from .schedule import DDPMSchedule
from .loaders import load_prior

__all__ = ["DDPMSchedule", "DiffusionPrior", "load_prior"]
